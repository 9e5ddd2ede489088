"""The demo shop's actions: look-ups against ``configs/demo/orders.json`` (set ``CSBOT_DEMO_ORDERS`` to move it)."""
