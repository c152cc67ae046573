"""The one preview and the one redactor (``jobwait._text``), directly.

End-to-end masking is checked where secrets travel (``tests/test_cli_messages.py``,
``tests/hostile/test_secrets.py``, ``tests/test_http_faults.py``); this pins the rule
itself: which values are secret, how each strength masks them, how a value is cut.
"""

from __future__ import annotations

import pytest

from jobwait._text import (
    ID_LIMIT,
    MASK,
    SERVER_LIMIT,
    VALUE_LIMIT,
    Redactor,
    mask_secrets,
    preview,
    secret_values,
)


def test_preview_cuts_one_way_naming_the_full_length() -> None:
    assert preview("short") == "'short'"
    assert preview("x" * 300, ID_LIMIT) == "'" + "x" * 118 + "\u2026 (302 characters)"
    assert preview("y" * 150, SERVER_LIMIT, quote=False) == "y" * 99 + "\u2026 (150 characters)"
    assert len(preview(list(range(1000)))) < VALUE_LIMIT + 20


@pytest.mark.parametrize(
    ("headers", "every", "secrets"),
    [
        (
            [("Authorization", "Bearer abcd1234efgh")],
            False,
            {"Bearer abcd1234efgh", "abcd1234efgh"},
        ),
        ([("authorization", "apiKey s3cr3t")], False, {"apiKey s3cr3t", "s3cr3t"}),
        ([("X-API-Key", "k123")], False, {"k123"}),
        (
            [("Cookie", "session=abc; theme=dark")],
            False,
            {"session=abc; theme=dark", "session=abc;", "theme=dark"},
        ),
        ([("Authorization", "Basic abc")], False, {"Basic abc"}),  # "abc" is too short
        ([("User-Agent", "my tool 1.0"), ("Accept", "json")], False, set()),
        # The CLI's: every header it was given, whole; only a credential's words alone.
        ([("User-Agent", "my tool 1.0"), ("Accept", "json")], True, {"my tool 1.0", "json"}),
    ],
)
def test_which_values_are_secret(
    headers: list[tuple[str, str]], every: bool, secrets: set[str]
) -> None:
    found = secret_values(headers, every_header=every)
    assert set(found) == secrets
    assert list(found) == sorted(found, key=len, reverse=True)
    assert "u:p4ss" in secret_values([], password="u:p4ss")


def test_exact_masks_data_and_the_call_masks_text_shown() -> None:
    redact = Redactor(secret_values([("Authorization", "apiKey s3cr3t-token-0815")]))
    assert redact.exact(b'{"echo": "s3cr3t-token-0815"}') == b'{"echo": "***"}'
    assert redact.exact("run cr3t-token-08 here") == "run cr3t-token-08 here"  # data: exact only
    assert redact("run cr3t-token-08 here") == f"run {MASK} here"  # shown: any 8-run
    assert redact("cut at s3cr3t-to") == f"cut at {MASK}"  # a prefix where the text ends
    assert redact("cut at s3cr3\u2026 (90 characters)") == f"cut at {MASK}\u2026 (90 characters)"
    assert redact("apiKey") == "apiKey"
    assert not Redactor(["abc"])  # nothing long enough to be a secret


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("client_secret=xyz123 ok", "client_secret=*** ok"),
        ("X-Api-Key: 0123abcd", "X-Api-Key: ***"),
        ("credentials=user:pa55word x", "credentials=*** x"),
        ("Invalid key: Authorization: Bearer abcdef123456", "Invalid key: Authorization: *** ***"),
        ("status=running", "status=running"),
        ("a-" * 2000 + "=" + "b" * 10, "a-" * 2000 + "=" + "b" * 10),
        ("key=a:a:a:a:a", "key=***"),
        ("token=" + "z" * 300 + " end", "token=*** end"),  # a long secret, whole
    ],
)
def test_server_text_is_masked_by_name(text: str, masked: str) -> None:
    assert mask_secrets(text) == masked
