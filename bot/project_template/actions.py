"""Actions: Python the bot runs before answering an intent (``action: actions:order_status`` in domain.yml).

An action is an ``async def`` taking the collected ``slots`` and the conversation's ``session``; it returns the
variables its template uses (``{status}``), optionally with ``"template"`` naming one of the intent's
``alternatives``. It must finish within ``action_timeout_seconds``; if it raises or times out, the customer gets
the ``action_failed`` template. csbot imports this file from the project folder: no PYTHONPATH needed.
"""

from __future__ import annotations

from typing import Any

#: Stands in for your order system: replace it with a call to your own back-end (use an async HTTP client,
#: or ``await asyncio.to_thread(...)`` around a blocking one, so other conversations are not held up).
ORDERS = {"10234": "on its way", "10235": "being prepared", "10236": "delivered"}


async def order_status(slots: dict[str, Any], session: Any) -> dict[str, Any]:
    """The status of the order in slot ``order_id``; the ``order_not_found`` template when there is none."""
    status = ORDERS.get(str(slots["order_id"]))
    if status is None:
        return {"template": "order_not_found"}
    return {"status": status}
