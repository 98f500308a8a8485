"""Property-based tests for `KEY=VALUE` parameter parsing."""

from __future__ import annotations

import json
import math
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from studio.core.errors import UsageError
from studio.core.params import parse_param_pairs, parse_value

finite_floats = st.floats(allow_nan=False, allow_infinity=False)
numbers = st.one_of(st.integers(), finite_floats)
keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)


def same(a: object, b: object) -> bool:
    """Equal and of the same type (so 1 and 1.0 and True differ)."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@given(st.integers())
def test_integers_round_trip(n: int) -> None:
    assert same(parse_value(str(n)), n)


@given(finite_floats)
def test_floats_round_trip(x: float) -> None:
    parsed = parse_value(repr(x))
    assert isinstance(parsed, float)
    assert parsed == x and math.copysign(1, parsed) == math.copysign(1, x)


@given(st.booleans(), st.sampled_from([str.lower, str.upper, str.title]))
def test_booleans_in_any_case(value: bool, case: object) -> None:
    assert parse_value(case(str(value))) is value  # type: ignore[operator]


@given(st.lists(numbers, min_size=2, max_size=8))
def test_comma_lists_of_numbers(values: list[float]) -> None:
    assert same(parse_value(",".join(repr(v) for v in values)), values)
    assert same(parse_value(", ".join(repr(v) for v in values)), values)


@given(numbers)
def test_trailing_comma_makes_a_one_item_list(value: float) -> None:
    assert same(parse_value(f"{value!r},"), [value])


WORDS = {"true", "false", "null", "none"}
NOT_NUMERIC = set(string.ascii_letters + "_/:") - set("eE")
plain_text = st.text(alphabet=string.ascii_letters + string.digits + " -_./:", min_size=1).filter(
    lambda s: (
        bool(NOT_NUMERIC & set(s)) and s.strip().lower() not in {"true", "false", "null", "none"}
    )
)


@given(plain_text)
def test_other_text_stays_text(text: str) -> None:
    assert parse_value(text) == text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | finite_floats | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=10,
)


@given(json_values)
def test_json_literals(value: object) -> None:
    text = json.dumps(value)
    if text[0] in '[{"':
        assert parse_value(text) == value


@given(st.dictionaries(keys, st.integers() | st.booleans() | st.lists(st.integers(), min_size=2)))
def test_pairs_round_trip(values: dict[str, object]) -> None:
    def show(v: object) -> str:
        return ",".join(map(str, v)) if isinstance(v, list) else str(v)

    assert parse_param_pairs([f"{k}={show(v)}" for k, v in values.items()]) == values


@given(st.lists(st.text(max_size=20), max_size=5))
def test_any_text_parses_or_gives_a_usage_error(pairs: list[str]) -> None:
    try:
        parsed = parse_param_pairs(pairs)
    except UsageError as err:
        assert str(err) and "\n" not in str(err)
    else:
        assert len(parsed) == len(pairs)


@pytest.mark.parametrize(
    ("pairs", "fragment"),
    [
        (["sigma"], "KEY=VALUE"),
        (["=3"], "valid name"),
        (["a=1", "a=2"], "twice"),
        (["a=[1"], "JSON"),
    ],
)
def test_usage_errors(pairs: list[str], fragment: str) -> None:
    with pytest.raises(UsageError, match=fragment):
        parse_param_pairs(pairs)


def test_value_keeps_everything_after_the_first_equals_sign() -> None:
    assert parse_param_pairs(["expr=a=b"]) == {"expr": "a=b"}


def test_quoted_json_keeps_a_string() -> None:
    assert parse_param_pairs(['code="007"']) == {"code": "007"}
