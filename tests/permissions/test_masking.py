"""Masks by field type: the shapes people recognise, no more revealed."""

from __future__ import annotations

import pytest

from engine.forms.definition import parse_definition
from permissions.masking import FULL_MASK, mask, mask_kind


@pytest.mark.parametrize(
    ("value", "kind", "masked"),
    [
        ("13812341234", "phone", "138****1234"),
        ("110101199001011234", "cn_id_number", "1101**********1234"),
        ("11010119900101123X", "cn_id_number", "1101**********123X"),
        ("6222021234567890", "bank_card", "6222********7890"),
        ("6222 0212 3456 7890", "bank_card", "6222 **** **** 7890"),
        ("张三", "name", "张*"),
        ("欧阳娜娜", "name", "欧***"),
        ("John Smith", "name", "J*** *****"),
        ("zhangsan@example.com", "email", "z*******@example.com"),
        ("ab@x.cn", "email", "a***@x.cn"),
        ("anything at all", "other", FULL_MASK),
        ("123", "bank_card", FULL_MASK),
        ("", "phone", ""),
        (None, "phone", None),
    ],
)
def test_mask(value: str | None, kind: str, masked: str | None) -> None:
    assert mask(value, kind) == masked


def test_mask_kind_from_type_and_key() -> None:
    form = parse_definition(
        {
            "key": "customer",
            "schema": {
                "properties": {
                    "name": {"type": "string"},
                    "phone": {"x-type": "phone"},
                    "id_number": {"x-type": "cn_id_number"},
                    "email": {"type": "string", "format": "email"},
                    "account_no": {"type": "string"},
                    "note": {"type": "string"},
                    "score": {"type": "integer"},
                }
            },
        }
    )
    kinds = {f.key: mask_kind(f) for f in form.fields}
    assert kinds == {
        "name": "name",
        "phone": "phone",
        "id_number": "cn_id_number",
        "email": "email",
        "account_no": "bank_card",
        "note": "other",
        "score": "other",
    }
