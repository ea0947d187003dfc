"""PRC resident ID numbers (GB 11643-1999): check digit and birth date."""

from __future__ import annotations

import datetime as dt

import pytest

from engine.forms.checks import cn_id_check_digit, cn_id_problem, make_cn_id

# The example number printed in GB 11643 and countless tutorials.
KNOWN_VALID = ["11010519491231002X"]
TODAY = dt.date(2024, 5, 31)


@pytest.mark.parametrize("number", KNOWN_VALID)
def test_published_example_numbers_are_valid(number: str) -> None:
    assert cn_id_problem(number, today=TODAY) is None


def test_check_digit_of_known_numbers() -> None:
    assert cn_id_check_digit("11010519491231002") == "X"
    assert cn_id_check_digit("44052418800101001") == "4"


def test_make_cn_id_builds_the_known_numbers() -> None:
    assert make_cn_id("110105", dt.date(1949, 12, 31), 2) == "11010519491231002X"
    assert make_cn_id("440524", dt.date(1880, 1, 1), 1) == "440524188001010014"
    assert make_cn_id("320106", dt.date(1990, 5, 17), 123) == "320106199005171239"


@pytest.mark.parametrize("sequence", [0, 1, 7, 99, 500, 999])
def test_numbers_built_with_make_cn_id_are_valid(sequence: int) -> None:
    number = make_cn_id("320106", dt.date(1990, 5, 17), sequence)
    assert len(number) == 18
    assert number.startswith(f"32010619900517{sequence:03d}")
    assert cn_id_problem(number, today=TODAY) is None


def test_a_lower_case_x_is_accepted() -> None:
    assert cn_id_problem("11010519491231002x", today=TODAY) is None


def test_every_single_digit_error_is_caught() -> None:
    """The MOD 11-2 check digit detects any one wrong digit among the first 17."""
    valid = "11010519491231002X"
    for position in range(17):
        for digit in "0123456789":
            if digit == valid[position]:
                continue
            wrong = valid[:position] + digit + valid[position + 1 :]
            assert cn_id_problem(wrong, today=TODAY) is not None, wrong


@pytest.mark.parametrize("last", ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"])
def test_wrong_check_digit(last: str) -> None:
    assert cn_id_problem("11010519491231002" + last, today=TODAY) == (
        "has a wrong check digit; please re-check the number"
    )


def test_the_other_published_example_is_too_old() -> None:
    # Its check digit is right, but 1880 is before the range the form accepts.
    assert cn_id_problem("440524188001010014", today=TODAY) == (
        "contains a birth date out of range (1880-01-01)"
    )


def test_a_check_digit_x_where_a_digit_is_due() -> None:
    assert cn_id_problem("32010619900517123X", today=TODAY) == (
        "has a wrong check digit; please re-check the number"
    )


@pytest.mark.parametrize(
    ("birth", "shown"),
    [
        ("19490231", "19490231"),
        ("19491301", "19491301"),
        ("19490100", "19490100"),
        ("20230229", "20230229"),
        ("00000101", "00000101"),
    ],
)
def test_impossible_birth_dates(birth: str, shown: str) -> None:
    first17 = f"110105{birth}002"
    number = first17 + cn_id_check_digit(first17)  # a correct check digit
    assert cn_id_problem(number, today=TODAY) == f"contains an impossible birth date ({shown})"


def test_leap_day_of_a_leap_year_is_possible() -> None:
    assert cn_id_problem(make_cn_id("110105", dt.date(2000, 2, 29), 1), today=TODAY) is None


def test_birth_dates_out_of_range() -> None:
    old = make_cn_id("110105", dt.date(1899, 12, 31), 1)
    assert cn_id_problem(old, today=TODAY) == ("contains a birth date out of range (1899-12-31)")
    future = make_cn_id("110105", dt.date(2024, 6, 1), 1)
    assert cn_id_problem(future, today=TODAY) == ("contains a birth date out of range (2024-06-01)")
    # Born today and on the first day of 1900 are in range.
    assert cn_id_problem(make_cn_id("110105", TODAY, 1), today=TODAY) is None
    assert cn_id_problem(make_cn_id("110105", dt.date(1900, 1, 1), 1), today=TODAY) is None


@pytest.mark.parametrize(
    "value",
    [
        "",
        "1101051949123100",  # 16 characters
        "11010519491231002",  # 17: the check digit is missing
        "11010519491231002X1",  # 19
        "1101051949123100X2",  # X before the end
        "11010519491231002Y",
        " 11010519491231002X",
        "11010519491231002X ",
        "11010519491231002X\n",  # a trailing newline is not part of the number
        "１１０１０５１９４９１２３１００２Ｘ",  # full-width digits
    ],
)
def test_malformed_numbers(value: str) -> None:
    assert cn_id_problem(value, today=TODAY) == (
        "must be 18 characters: 17 digits and a final digit or X"
    )
