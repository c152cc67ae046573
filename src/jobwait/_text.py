"""What jobwait shows of a value: one preview, and one redactor with one secret rule.

Messages quote values that came from elsewhere: a job's id and status, a failure
payload, a server's words, a caller's bad argument. Any of them may be huge, and some
may hold a secret. This module decides, once, how much of a value is shown
(:func:`preview`: one limit per kind of value, one ellipsis) and what is masked:

- **Which values are secret** (:func:`secret_values`): the value of every header
  whose name looks like a credential (:data:`SECRET_NAME`), each word of it but the
  auth scheme's (``Bearer``, ``apiKey``), and the URL's password; never shorter than
  :data:`MIN_SECRET` characters.
- **Known values** (:class:`Redactor`): each secret, replaced by :data:`MASK`
  everywhere (``exact``, for data: bodies and headers), and in text shown to a
  person also any 8-character run of a secret's long words and a secret word's
  prefix where a text was cut before it reached us (``__call__``).
- **Unknown values** (:func:`mask_secrets`): in a server's own words, the value after
  an auth scheme (``Bearer abc``) or a secret's name (``api_key=abc``).

Mask first, cut afterwards: a cut never leaves part of a key. Nothing here does IO.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import AnyStr, Final

__all__ = [
    "ID_LIMIT",
    "MASK",
    "MIN_SECRET",
    "SECRET_NAME",
    "SERVER_LIMIT",
    "STATUS_LIMIT",
    "VALUE_LIMIT",
    "Redactor",
    "mask_secrets",
    "preview",
    "secret_values",
]

# --- preview -------------------------------------------------------------------------------

#: A job id in a message: at most this many characters of its ``repr``.
ID_LIMIT: Final = 120
#: A status in a message (a server may send a status of any length).
STATUS_LIMIT: Final = 120
#: Any other value quoted in a message: a failure payload, an argument, an exception.
VALUE_LIMIT: Final = 200
#: A server's own words (an error body's message, the start of a body that is not JSON).
SERVER_LIMIT: Final = 100


def preview(value: object, limit: int = VALUE_LIMIT, *, quote: bool = True) -> str:
    """``value`` as a message shows it: its ``repr`` (``quote=False``: its ``str``), and
    past ``limit`` characters cut to ``limit - 1`` of them, an ellipsis and the full
    length (``'abc…' (523 characters)``); an integer too long to write out is named by
    its size. The attributes of an error keep values whole.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 10_000:
        # repr() of an int past 4,300 digits raises ValueError: its size is the point.
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    text = repr(value) if quote else str(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 1]}\u2026 ({len(text)} characters)"


# --- secrets -------------------------------------------------------------------------------

#: What masked text is replaced by.
MASK: Final = "***"
#: The one rule for names that hold a secret: headers (``Authorization``, ``X-API-Key``,
#: ``Cookie``, ``Private-Token``) and, in a server's text, ``name=value`` pairs.
SECRET_NAME: Final = (
    r"authorization|cookie|key|token|secret|passw|session|signature|credential|auth"
)
#: Shorter values are not masked (masking ``abc`` everywhere would hide real text).
MIN_SECRET: Final = 4
# Words that name an auth scheme, not a secret: "Bearer <token>", "apiKey <key>".
_SCHEMES: Final = frozenset(
    {"bearer", "basic", "digest", "token", "apikey", "api-key", "negotiate", "hmac"}
)
_HEADER: Final = re.compile(SECRET_NAME, re.IGNORECASE)
_PIECE: Final = 8  # a run this long of a secret's word is masked wherever it stands
_STUB: Final = 4  # a prefix this long of a secret's word is masked where a text was cut
_ELLIPSES: Final = ("...", "\u2026")


def secret_values(
    headers: Iterable[tuple[str, str]],
    *,
    password: str | None = None,
    every_header: bool = False,
) -> tuple[str, ...]:
    """The secrets a request carries, longest first: the value of every header whose
    name matches :data:`SECRET_NAME` and each of its words that is not an auth
    scheme's name, the whole value of every other header too with ``every_header``
    (the CLI's: all given by the user), and the URL's ``password``; each at least
    :data:`MIN_SECRET` characters."""
    found: set[str] = set()
    for name, value in headers:
        credential = _HEADER.search(name) is not None
        if credential or every_header:
            found.add(value.strip())
        if credential:  # "Bearer <token>": the token alone may be quoted
            found.update(w for w in value.split() if w.lower() not in _SCHEMES)
    if password:
        found.add(password)
    return tuple(sorted((s for s in found if len(s) >= MIN_SECRET), key=len, reverse=True))


class Redactor:
    """Masks known secrets (:func:`secret_values`) with :data:`MASK`.

    :meth:`exact` replaces each secret wherever it stands, in ``str`` or ``bytes``
    (bodies and headers: data is changed no more than that). Calling the redactor on
    text shown to a person also masks any run of 8 or more characters of a secret's
    long word (so ``apiKey s3cr3t-token`` is masked where only the token, or a part of
    it, is quoted) and a prefix of 4 or more characters of such a word where a text
    was cut before it reached us (at its end, or just before ``...`` or ``…``), as a
    server excerpt or a library message cut at its limit may be.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        whole = {s for s in (value.strip() for value in secrets) if len(s) >= MIN_SECRET}
        words = {w for s in whole for w in s.split() if len(w) >= _PIECE}
        self._whole = sorted(whole, key=len, reverse=True)
        self._raw = [s.encode("utf-8", "replace") for s in self._whole]
        self._words = sorted(words, key=len, reverse=True)
        self._pieces = sorted(
            {word[i : i + _PIECE] for word in words for i in range(len(word) - _PIECE + 1)}
        )

    def __bool__(self) -> bool:
        return bool(self._whole)

    def exact(self, text: AnyStr) -> AnyStr:
        """``text`` (``str`` or ``bytes``) with every secret replaced by :data:`MASK`."""
        if isinstance(text, bytes):
            for raw in self._raw:
                if raw in text:
                    text = text.replace(raw, MASK.encode())
            return text
        for secret in self._whole:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def __call__(self, text: str) -> str:
        text = self.exact(text)
        if not self._words:
            return text
        hidden = bytearray(len(text))
        for piece in self._pieces:
            start = text.find(piece)
            while start != -1:
                hidden[start : start + _PIECE] = b"\x01" * _PIECE
                start = text.find(piece, start + 1)
        cuts = {len(text)}
        for mark in _ELLIPSES:
            start = text.find(mark)
            while start != -1:
                cuts.add(start)
                start = text.find(mark, start + 1)
        for cut in cuts:
            stub = self._stub_before(text, cut)
            hidden[cut - stub : cut] = b"\x01" * stub
        if not any(hidden):
            return text
        out: list[str] = []
        for i, char in enumerate(text):
            if not hidden[i]:
                out.append(char)
            elif i == 0 or not hidden[i - 1]:
                out.append(MASK)
        return "".join(out)

    def _stub_before(self, text: str, cut: int) -> int:
        """The length of the longest prefix (>= 4 chars) of a secret word ending at ``cut``."""
        for word in self._words:
            for length in range(min(len(word), cut), _STUB - 1, -1):
                if text.startswith(word[:length], cut - length):
                    return length
        return 0


_WORD: Final = r"[A-Za-z0-9._~+/=\-]"
# An auth scheme followed by its credential ("Bearer abc", "apiKey abc", "Basic abc").
_SCHEME: Final = re.compile(
    rf"(?i)\b(bearer|basic|apikey|api-key|token)(\s+)({_WORD}{{{MIN_SECRET},}})"
)
# A name followed by a value ("api_key=abc", '"password": "abc"', "token: abc"); masked
# when the name matches SECRET_NAME and the value is not itself the next name ("Invalid
# key: Authorization: ..." masks what follows Authorization). A name starts where a
# run of name characters does, and every run is read possessively (never re-read); a
# value's colons count only in its first 64 characters: linear time on any text.
_NAMED: Final = re.compile(
    r"(?<![\w-])([\w-]++)(\s*+[\"']?\s*+[:=]\s*+[\"']?)"
    rf"((?:[^\s\"',;&}}:]|:(?=\S)){{{MIN_SECRET},64}}+[^\s\"',;&}}:]*+)(?!\s*[:=])"
)


def _named(match: re.Match[str]) -> str:
    name, between, _ = match.groups()
    return f"{name}{between}{MASK}" if _HEADER.search(name) else match.group(0)


def mask_secrets(text: str) -> str:
    """``text`` (a server's own words) with credential-looking values replaced by
    :data:`MASK`: the value after an auth scheme (``Bearer``, ``Basic``, ``apiKey``)
    and after a secret's name (``api_key=``, ``"password": ...``, ``Authorization:``,
    ``token=``). A pattern cannot know every secret: the request layer and the CLI
    also mask the exact values they sent (:class:`Redactor`)."""
    text = _SCHEME.sub(rf"\1\2{MASK}", text)
    return _NAMED.sub(_named, text)
