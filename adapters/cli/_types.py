"""Argument types: each turns one command-line string into a checked value or raises
``argparse.ArgumentTypeError`` with a message that never echoes a secret."""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass, field

from jobwait import ApiProfile, field_reader
from jobwait._plumbing import preview

# A mistyped option value is echoed at most this long (it may be a pasted secret).
_ARGUMENT = 30


def number(text: str, *, minimum: float, inclusive: bool, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if math.isfinite(value) and (value >= minimum if inclusive else value > minimum):
        return value
    raise argparse.ArgumentTypeError(f"expected {what}, got {preview(text, _ARGUMENT)}")


def count(text: str) -> int:
    """A whole number >= 1."""
    if text.isascii() and text.isdigit() and int(text) >= 1:
        return int(text)
    raise argparse.ArgumentTypeError(
        f"expected a whole number >= 1, got {preview(text, _ARGUMENT)}"
    )


def positive_seconds(text: str) -> float:
    return number(text, minimum=0.0, inclusive=False, what="a number of seconds > 0")


def factor(text: str) -> float:
    return number(text, minimum=1.0, inclusive=True, what="a number >= 1")


def time_scale(text: str) -> float:
    return number(text, minimum=0.0, inclusive=False, what="a number > 0")


def timeout(text: str) -> float | None:
    if text.strip().lower() == "none":
        return None
    return number(text, minimum=0.0, inclusive=True, what="a number of seconds >= 0, or 'none'")


def port(text: str) -> int:
    if text.isascii() and text.isdigit() and int(text) <= 65535:
        return int(text)
    raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {text[:10]!r}")


def url(text: str) -> str:
    """An absolute http(s) URL with a host and, if given, a port from 1 to 65535.

    Checked before anything is sent, so a URL that could never work is a usage error
    (exit 2). Messages show the scheme, and the port a user typed, but never the rest
    of the URL: it may carry a token in its query or user info.
    """
    scheme, sep, rest = text.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        shown = f" (it starts with {scheme}://)" if sep and scheme.isalnum() else ""
        raise argparse.ArgumentTypeError(f"the URL must start with http:// or https://{shown}")
    where = f"after {scheme}://"
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    hostport = authority.rpartition("@")[2]
    if hostport.startswith("["):  # an IPv6 literal, [::1]:8000
        host, bracket, after = hostport.partition("]")
        host, port_text = (host + bracket, after[1:]) if after.startswith(":") else (host, None)
        if not bracket or (after and not after.startswith(":")):
            raise argparse.ArgumentTypeError(f"the URL's IPv6 host {where} is malformed")
    else:
        host, colon, port_text = hostport.partition(":")
        port_text = port_text if colon else None
    if not host:
        slashes = f" ({scheme}:/// has three slashes)" if rest.startswith("/") else ""
        raise argparse.ArgumentTypeError(
            f"the URL has no host {where}{slashes}; expected e.g. {scheme}://example.com/jobs/42"
        )
    if port_text is not None and port_text != "":
        if not (port_text.isascii() and port_text.isdigit()):
            raise argparse.ArgumentTypeError(
                f"the URL's port {port_text[:10]!r} is not a number (expected 1-65535)"
            )
        if not 1 <= int(port_text) <= 65535:
            raise argparse.ArgumentTypeError(
                f"the URL's port {int(port_text)} is out of range (expected 1-65535)"
            )
    return text


def status_field(text: str) -> str:
    try:
        field_reader(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def api(text: str) -> str:
    try:
        ApiProfile.named(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def http_status(text: str) -> int:
    if text.isascii() and text.isdigit() and 100 <= int(text) <= 599:
        return int(text)
    raise argparse.ArgumentTypeError(f"expected an HTTP status 100-599, got {text[:10]!r}")


# RFC 9110 field names are tokens; values are visible ASCII, spaces and tabs (httpx
# encodes header values as ASCII, and a CR or LF would split the header).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e]*\Z")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True, slots=True)
class Header:
    name: str
    value: str = field(repr=False)  # a secret, as far as we know: never shown


@dataclass(frozen=True, slots=True)
class HeaderEnv:
    name: str
    variable: str


def header_name(name: str, option: str) -> str:
    name = name.strip()
    if not _TOKEN.match(name):
        raise argparse.ArgumentTypeError(
            f"{option} needs a valid HTTP header name before the separator (not shown)"
        )
    return name


def check_header_value(name: str, value: str) -> None:
    if not _FIELD_VALUE.match(value):
        raise argparse.ArgumentTypeError(
            f"the value of header {name!r} has characters that cannot be sent "
            "(control or non-ASCII characters); the value is not shown"
        )


def header(text: str) -> Header:
    name, colon, value = text.partition(":")
    if not colon:
        raise argparse.ArgumentTypeError(
            "expected 'Name: value', but there is no colon (the argument is not shown)"
        )
    name = header_name(name, "--header")
    value = value.strip()
    check_header_value(name, value)
    return Header(name, value)


def header_env(text: str) -> HeaderEnv:
    name, eq, variable = text.partition("=")
    if not eq:
        raise argparse.ArgumentTypeError("expected NAME=ENVVAR, e.g. Authorization=API_TOKEN")
    name = header_name(name, "--header-env")
    if not _ENV_NAME.match(variable):
        raise argparse.ArgumentTypeError(
            f"--header-env {name}=...: expected the name of an environment variable "
            "(letters, digits, underscores; the text given is not shown)"
        )
    return HeaderEnv(name, variable)


def listen_address(text: str) -> tuple[str, int]:
    """``PORT``, ``HOST:PORT`` or ``[IPv6]:PORT``; the host defaults to ``127.0.0.1``."""
    host, colon, port_text = text.rpartition(":")
    if not colon:
        host, port_text = "127.0.0.1", text
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or not (port_text.isascii() and port_text.isdigit()) or int(port_text) > 65535:
        raise argparse.ArgumentTypeError(
            f"expected PORT or HOST:PORT (e.g. 127.0.0.1:8765), got {preview(text, _ARGUMENT)}"
        )
    return host, int(port_text)


def env_name(text: str) -> str:
    """The name of an environment variable (its value is read later, never shown)."""
    if not _ENV_NAME.match(text):
        raise argparse.ArgumentTypeError(
            "expected the name of an environment variable (letters, digits, underscores)"
        )
    return text


def seconds(text: str) -> float:
    return number(text, minimum=0.0, inclusive=True, what="a number of seconds >= 0")


def probability(text: str) -> float:
    value = number(text, minimum=0.0, inclusive=True, what="a probability from 0 to 1")
    if value > 1.0:
        raise argparse.ArgumentTypeError(f"expected a probability from 0 to 1, got {text!r}")
    return value
