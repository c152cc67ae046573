"""Push options: ``jobwait wait --listen`` and ``jobwait serve --webhook``.

``--listen`` runs a :class:`~jobwait.adapters.webhook.WebhookReceiver` beside the wait:
each notice POSTed to it makes the wait poll at once (a ``jobwait.Wakeup``), while the
polling schedule stays the safety net. ``--webhook`` makes ``serve`` deliver notices.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator, Mapping
from typing import IO, TYPE_CHECKING

from jobwait import Wakeup

from . import _types
from ._base import CommandLineError

if TYPE_CHECKING:
    from ..server import Webhooks


def add_listen(parser: argparse.ArgumentParser) -> None:
    """The ``wait`` options for webhook notices."""
    push = parser.add_argument_group("webhook notices (poll at once on each)")
    push.add_argument(
        "--listen",
        metavar="HOST:PORT",
        type=_types.listen_address,
        help="accept webhook notices (POST, JSON) at http://HOST:PORT/ and poll at once "
        "on each; polling goes on as scheduled (HOST defaults to 127.0.0.1)",
    )
    push.add_argument(
        "--listen-secret-env",
        metavar="ENVVAR",
        type=_types.env_name,
        help="only take notices signed with the secret in environment variable ENVVAR "
        "(header X-Jobwait-Signature: sha256=<hex HMAC-SHA256 of the body>)",
    )
    push.add_argument(
        "--listen-remote",
        action="store_true",
        help="allow --listen on an address other than loopback",
    )


def add_webhook(parser: argparse.ArgumentParser) -> None:
    """The ``serve`` options for delivering webhooks."""
    push = parser.add_argument_group("webhooks (a notice on each status change)")
    push.add_argument(
        "--webhook",
        metavar="URL",
        help='POST {"id": ..., "status": ...} to URL (loopback) on each status change',
    )
    for option, kind, metavar, meaning in (
        ("--webhook-drop", _types.probability, "P", "never send this fraction of the notices"),
        ("--webhook-duplicate", _types.probability, "P", "send this fraction of them twice"),
        ("--webhook-delay", _types.seconds, "SECONDS", "deliver each one up to this late"),
    ):
        push.add_argument(option, metavar=metavar, type=kind, default=0.0, help=meaning)
    push.add_argument(
        "--webhook-secret-env",
        metavar="ENVVAR",
        type=_types.env_name,
        help="sign each notice with the secret in environment variable ENVVAR",
    )


def _secret(variable: str | None, environ: Mapping[str, str], option: str) -> str | None:
    if variable is None:
        return None
    value = environ.get(variable)
    if not value:
        raise CommandLineError(f"{option} {variable}: that environment variable is not set")
    return value


@contextlib.contextmanager
def listening(
    args: argparse.Namespace, environ: Mapping[str, str], stderr: IO[str], quiet: bool
) -> Iterator[Wakeup | None]:
    """With ``--listen``: a receiver running for the block, and the Wakeup it rings."""
    if args.listen is None:
        if args.listen_secret_env is not None:
            raise CommandLineError("--listen-secret-env needs --listen")
        yield None
        return
    from ..webhook import WebhookReceiver

    host, port = args.listen
    secret = _secret(args.listen_secret_env, environ, "--listen-secret-env")
    wakeup = Wakeup()
    try:
        receiver = WebhookReceiver(
            wakeup, host=host, port=port, secret=secret, allow_remote=args.listen_remote
        )
    except ValueError:
        raise CommandLineError(
            f"--listen {host}:{port}: not a loopback address; add --listen-remote to allow it"
        ) from None
    try:
        receiver.start()
    except OSError as exc:
        raise CommandLineError(
            f"--listen {host}:{port}: cannot listen there: {exc.strerror or exc}"
        ) from None
    try:
        if not quiet:
            signed = " (signed only)" if secret is not None else ""
            stderr.write(f"jobwait: taking webhook notices at {receiver.url}{signed}\n")
            stderr.flush()
        yield wakeup
    finally:
        receiver.close()


def webhooks(args: argparse.Namespace, environ: Mapping[str, str]) -> Webhooks | None:
    """``serve``'s webhook delivery from its options, or ``None`` without ``--webhook``."""
    from ..server import Webhooks

    if args.webhook is None:
        for option in ("webhook_drop", "webhook_duplicate", "webhook_delay"):
            if getattr(args, option):
                raise CommandLineError(f"--{option.replace('_', '-')} needs --webhook")
        return None
    try:
        return Webhooks(
            url=args.webhook,
            drop=args.webhook_drop,
            duplicate=args.webhook_duplicate,
            delay=args.webhook_delay,
            secret=_secret(args.webhook_secret_env, environ, "--webhook-secret-env"),
        )
    except ValueError as exc:
        raise CommandLineError(f"--webhook: {exc}") from None
