"""Shared fixtures of the expression tests: a fixed clock and a loan context."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from engine.expressions import evaluate_text

NOW = dt.datetime(2025, 10, 1, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))

CONTEXT: dict[str, Any] = {
    "amount": Decimal("600000.00"),
    "term": 36,
    "approved": True,
    "note": None,
    "customer": {"name": "张三", "tier": "vip", "branch": {"code": "SH01"}, "age": 41},
    "items": [
        {"product": "loan", "amount": Decimal("1.50")},
        {"product": "card", "amount": 2},
    ],
    "tags": ["new", "urgent"],
    "votes": [True, True, False],
    "submitted_on": dt.date(2025, 9, 28),
    "submitted_at": dt.datetime(2025, 9, 28, 10, 0, tzinfo=dt.UTC),
    "rate": 0.035,
}


def run(text: str, **extra: Any) -> Any:
    return evaluate_text(text, {**CONTEXT, **extra}, now=NOW)
