"""Reading JSON that comes from outside (HTTP bodies, webhook notices, job scripts) with
its nesting bounded.

``json.loads`` recurses once per level of nesting, so ``b"[" * 100_000`` raises
``RecursionError``, at a depth that depends on how deep the caller's own stack already
is. Catching that error is a lottery; a depth check after parsing comes too late. So
:func:`loads` measures the nesting *before* parsing, without recursion, and refuses
anything deeper than :data:`MAX_DEPTH` with a ``ValueError``, as it refuses any other
text that is not JSON. Every parser of outside JSON in jobwait reads through it.
"""

from __future__ import annotations

import itertools
import json
import re
from array import array
from typing import Any, Final

__all__ = ["MAX_DEPTH", "loads"]

#: The deepest nesting accepted (serde_json's default limit): far beyond any job API's
#: payload, far below the interpreter's recursion limit.
MAX_DEPTH: Final = 128

# A JSON string (its brackets do not nest), as UTF-8 bytes: a quote, a backslash and a
# bracket are single bytes that never occur inside a multi-byte character.
_STRING: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
# Opening brackets as +1, closing ones as -1 (signed bytes); every other byte deleted.
_STEPS: Final = bytes.maketrans(b"[]{}", b"\x01\xff\x01\xff")
_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in b"[]{}")


def loads(data: bytes | bytearray | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads(data)``, for data from outside: nesting deeper than ``max_depth``
    is refused before the parser sees it.

    Bytes are decoded as ``json.loads`` decodes them (UTF-8, -16 or -32, found from
    the first bytes). The check costs about half a parse, and only for data with more
    than ``max_depth`` brackets.

    Raises:
        ValueError: ``data`` is not JSON (``json.JSONDecodeError``, or a
            ``UnicodeDecodeError`` for bytes that are not text), or it nests arrays and
            objects deeper than ``max_depth`` (the message says so).
    """
    if isinstance(data, str):
        text: str | bytes = data
        utf8 = data.encode("utf-8", "surrogatepass")
    else:
        text = utf8 = bytes(data)
        encoding = json.detect_encoding(utf8)
        if not encoding.startswith("utf-8"):
            text = utf8.decode(encoding, "surrogatepass")
            utf8 = text.encode("utf-8", "surrogatepass")
    # Fast path: too few brackets to nest that deep (strings' brackets counted too).
    if utf8.count(b"[") + utf8.count(b"{") > max_depth and _depth(utf8) > max_depth:
        raise ValueError(f"JSON nested deeper than {max_depth} levels")
    return json.loads(text)


def _depth(utf8: bytes) -> int:
    """The deepest nesting of arrays and objects in ``utf8``, ignoring brackets inside
    strings (an unterminated string's brackets count: that text is not JSON anyway)."""
    if b'\\"' in utf8:  # a quote may be escaped: find each string whole
        outside = _STRING.sub(b"", utf8)
    else:  # every quote opens or closes a string: what lies between pairs is outside
        outside = b"".join(utf8.split(b'"')[::2])
    steps = outside.translate(_STEPS, _NOT_BRACKETS)
    return max(itertools.accumulate(array("b", steps)), default=0)
