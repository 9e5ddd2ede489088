"""Actions of the Northwind Shop demo: each receives the session and its slots and returns template variables.

They stand in for a shop's back-end by reading ``configs/demo/orders.json`` (the packaged copy, found through
:func:`csbot.home.configs_dir` in a checkout and in an installed wheel alike; ``$CSBOT_DEMO_ORDERS`` names another
file). Order ``99999`` simulates a back-end failure, so the demo can show what a customer sees when an action fails.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any

from bot.sessions.state import SessionState
from csbot.home import configs_dir

log = logging.getLogger(__name__)

#: Environment variable naming another orders file.
ORDERS_ENV = "CSBOT_DEMO_ORDERS"
STATUS_WORDS = {"processing": "being prepared", "shipped": "on its way", "out_for_delivery": "out for delivery today",
                "delivered": "delivered", "cancelled": "cancelled", "returned": "returned"}


class OrderSystemError(RuntimeError):
    """The (simulated) order system failed."""


def orders_path() -> Path:
    """The orders file: ``$CSBOT_DEMO_ORDERS``, else the packaged ``configs/demo/orders.json``."""
    override = os.environ.get(ORDERS_ENV)
    return Path(override) if override else configs_dir() / "demo" / "orders.json"


def _orders() -> dict[str, dict[str, Any]]:
    return {str(o["order_id"]): o for o in json.loads(orders_path().read_text(encoding="utf-8"))}


async def _order(order_id: str) -> dict[str, Any] | None:
    orders = await asyncio.to_thread(_orders)
    order = orders.get(str(order_id))
    if order is not None and order.get("status") == "lookup_error":
        raise OrderSystemError(f"the order system did not answer for order {order_id}")
    return order


def _items(order: dict[str, Any]) -> str:
    return ", ".join(f"{i.get('qty', 1)} × {i['product']}" for i in order.get("items", []))


async def lookup_order(slots: dict[str, Any], session: SessionState) -> dict[str, Any]:
    order = await _order(slots["order_id"])
    if order is None:
        return {"template": "order_not_found"}
    status = order["status"]
    eta = f"It should arrive by {order['eta']} ({order.get('carrier', 'our courier')}, tracking {order.get('tracking', '—')})." \
        if order.get("eta") and status in ("processing", "shipped", "out_for_delivery") else ""
    return {"status": STATUS_WORDS.get(status, status), "eta": eta, "carrier": order.get("carrier", ""),
            "tracking": order.get("tracking", ""), "items": _items(order)}


async def cancel_order(slots: dict[str, Any], session: SessionState) -> dict[str, Any]:
    order = await _order(slots["order_id"])
    if order is None:
        return {"template": "order_not_found"}
    if not order.get("cancellable") or order["status"] not in ("processing",):
        return {"template": "cancel_refused"}
    return {"items": _items(order)}


async def start_return(slots: dict[str, Any], session: SessionState) -> dict[str, Any]:
    order = await _order(slots["order_id"])
    if order is None:
        return {"template": "order_not_found"}
    if order["status"] != "delivered":
        return {"template": "return_refused", "status": STATUS_WORDS.get(order["status"], order["status"])}
    return {"items": _items(order), "return_code": f"RT-{slots['order_id']}-{session.turn_count + 1:02d}"}


async def change_address(slots: dict[str, Any], session: SessionState) -> dict[str, Any]:
    order = await _order(slots["order_id"])
    if order is None:
        return {"template": "order_not_found"}
    if order["status"] not in ("processing",):
        return {"template": "address_refused", "status": STATUS_WORDS.get(order["status"], order["status"])}
    return {}


async def send_password_reset(slots: dict[str, Any], session: SessionState) -> dict[str, Any]:
    log.info("demo: a password reset link would be sent to %s", slots["email"])
    return {}


_STOCK = {"running shoes": 12, "denim jacket": 0, "wool scarf": 31, "phone case": 54, "usb-c charger": 7,
          "wireless earbuds": 0, "hoodie": 18, "sneakers": 9}


async def check_stock(slots: dict[str, Any], session: SessionState) -> dict[str, Any]:
    product = str(slots["product"]).lower().strip()
    count = next((n for name, n in _STOCK.items() if name in product or product in name), None)
    if count is None:
        return {"stock": f"I couldn't find \"{slots['product']}\" in our catalogue. Could you check the name?"}
    if count == 0:
        return {"stock": f"The {slots['product']} is sold out right now; you can ask for a back-in-stock e-mail on its page."}
    return {"stock": f"Yes, the {slots['product']} is in stock ({count} left)."}


async def notify_agents(session: SessionState, reason: str) -> None:
    """The demo's hand-over hook: a real deployment would post to its agents' queue."""
    log.info("hand-over of session %s: %s", session.session_id, reason)
