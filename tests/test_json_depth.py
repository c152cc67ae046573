"""jobwait._json.loads: nesting is measured before parsing, exactly, whatever the strings
hold (brackets, quotes, escapes), and deep text is refused with a ValueError."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobwait._json import _NOT_MARKS, MAX_DEPTH, _depth, loads

# Strings full of what the outline reads: brackets, quotes (escaped by json.dumps),
# backslashes and ordinary text.
_TEXT = st.text(alphabet=st.sampled_from('[]{}"\\ab\n'), max_size=8)
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=30,
)


def depth_of(value: Any) -> int:
    """The definition: arrays and objects nest, everything else does not."""
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    return 0


@settings(max_examples=400, deadline=None)
@given(_VALUES, st.booleans())
def test_depth_is_the_nesting_of_the_parsed_value(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert _depth(text, text.translate(None, _NOT_MARKS)) == depth_of(value)


@settings(max_examples=200, deadline=None)
@given(_VALUES)
def test_loads_reads_what_json_reads(value: Any) -> None:
    text = json.dumps(value)
    assert loads(text) == value
    assert loads(text.encode()) == value


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        (b'{"a": "[[[", "b": [1]}', 2),  # brackets in a string are not nesting
        (b'["]", ["x"], "[" ]', 2),
        (b'["\\"[", [[]]]', 3),  # an escaped quote does not end the string
        (b'[""""]', 1),
        (b"[" * 5 + b"]" * 5, 5),
    ],
)
def test_depth_reads_strings_as_strings(text: bytes, depth: int) -> None:
    assert _depth(text, text.translate(None, _NOT_MARKS)) == depth


def test_deep_text_is_refused_before_parsing() -> None:
    deep = b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1)
    with pytest.raises(ValueError, match=f"nested deeper than {MAX_DEPTH} levels"):
        loads(deep)
    assert loads(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is not None
    # Brackets inside strings are many, but they do not nest: accepted.
    wide = json.dumps({"s": "[" * 1000, "t": ["{" * 500]}).encode()
    assert loads(wide)["t"] == ["{" * 500]
    # A huge unclosed run is refused, not a RecursionError.
    with pytest.raises(ValueError, match="nested deeper"):
        loads(b"[" * 100_000)
