"""Masked values for fields a user may see only at level ``mask``.

``mask(value, kind)`` where ``kind`` is a field type name (``phone``,
``cn_id_number``, ``email``) or one of the text kinds ``name`` and
``bank_card``; :func:`mask_kind` picks the kind for a form field. Masks keep
the shape people recognise (``138****1234``) and reveal no more than the
usual Chinese banking practice: a mobile's first 3 and last 4 digits, an ID
number's first 4 (the region) and last 4, a card's first and last 4, a
name's first character, an email's first character and domain. Anything
else is replaced by a fixed ``****``, so even its length stays hidden.
"""

from __future__ import annotations

import re
from typing import Any

from engine.forms.definition import Field

FULL_MASK = "****"
NAME_KEYS = re.compile(r"(^|_)(name|full_name|contact|holder)$")
CARD_KEYS = re.compile(r"(card|account)(_no|_number)?$")


def mask_kind(field: Field) -> str:
    """The masking kind of a field: its type, or a text kind guessed from its key."""
    t = field.type.name
    if t in {"phone", "cn_id_number", "email"}:
        return t
    if t == "text":
        if CARD_KEYS.search(field.key):
            return "bank_card"
        if NAME_KEYS.search(field.key):
            return "name"
    return "other"


def mask(value: Any, kind: str) -> Any:
    """The masked form of ``value``; ``None`` stays ``None``."""
    if value is None:
        return None
    text = str(value)
    if not text:
        return text
    match kind:
        case "phone":
            return _keep(text, 3, 4) if len(_digits(text)) >= 11 else _keep(text, 0, 4)
        case "cn_id_number":
            return _keep(text, 4, 4) if len(text) >= 15 else FULL_MASK
        case "bank_card":
            return _keep(text, 4, 4) if len(_digits(text)) >= 12 else FULL_MASK
        case "name":
            return text[0] + "".join(" " if c.isspace() else "*" for c in text[1:])
        case "email":
            local, at, domain = text.rpartition("@")
            if not at or not local:
                return FULL_MASK
            return f"{local[0]}{'*' * max(len(local) - 1, 3)}@{domain}"
    return FULL_MASK


def _digits(text: str) -> str:
    return text if text.isalnum() else "".join(c for c in text if c.isalnum())


def _keep(text: str, head: int, tail: int) -> str:
    """Star each letter or digit but the first ``head`` and last ``tail`` (separators stay)."""
    if text.isalnum():  # the usual case, and the hot path of a masked list page
        if len(text) <= head + tail:
            return FULL_MASK
        return text[:head] + "*" * (len(text) - head - tail) + text[len(text) - tail :]
    positions = [i for i, c in enumerate(text) if c.isalnum()]
    if len(positions) <= head + tail:
        return FULL_MASK
    hidden = set(positions[head : len(positions) - tail])
    return "".join("*" if i in hidden else c for i, c in enumerate(text))
