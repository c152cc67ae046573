"""Ids: ``/ .. . ? # %2F``, unicode, CRLF and ``&`` in the single, cancel and batch paths.

The promise (docs/ionq.md, ``job_path``; docs/fleet.md, batch URLs): a job id is
percent-encoded into exactly one path segment (dots included, so ``..`` cannot climb),
or into one ``ids`` query value, and reaches the server as itself: it can neither
address another endpoint nor add a parameter or a header.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import httpx
import pytest
import trio
from _hostile import Conn, serving
from _runners import RUNTIMES, TLS

from jobwait.adapters import ionq

pytestmark = pytest.mark.realtime

IDS = {
    "slash": "a/b",
    "dotdot": "..",
    "dot": ".",
    "climb": "../../admin",
    "question": "a?b=c",
    "hash": "a#b",
    "encoded-slash": "a%2Fb",
    "unicode": "jöb-日本",
    "crlf": "a\r\nX-Injected: 1",
    "ampersand": "a&ids=b",
    "space-plus": "a b+c",
}


def _answer(conn: Conn) -> None:
    target = conn.request.target
    split = urlsplit(target)
    if split.path == "/jobs" and split.query:
        ids = parse_qs(split.query)["ids"]
        conn.respond(200, {"jobs": [{"id": i, "status": "completed"} for i in ids]})
    elif split.path.endswith("/status/cancel"):
        conn.respond(200, {"id": "x", "status": "canceled"})
    else:
        conn.respond(200, {"id": unquote(split.path.split("/")[2]), "status": "completed"})


def _call(runtime: str, base: str, what: str, job_id: str) -> Any:
    kw: dict[str, Any] = {"base_url": base, "verify": TLS, "timeout": 2.0}
    if runtime == "sync":
        with httpx.Client(**kw) as client:
            if what == "single":
                return ionq.wait_for_job(client, job_id, timeout=2)
            if what == "cancel":
                return ionq.cancel_job(client, job_id)
            return ionq.wait_for_jobs(client, [job_id], timeout=2)

    async def main() -> Any:
        async with httpx.AsyncClient(**kw) as client:
            if what == "single":
                return await ionq.async_wait_for_job(client, job_id, timeout=2)
            if what == "cancel":
                return await ionq.async_cancel_job(client, job_id)
            return await ionq.async_wait_for_jobs(client, [job_id], timeout=2)

    return asyncio.run(main()) if runtime == "asyncio" else trio.run(main)


def _segment(job_id: str) -> str:
    return quote(job_id, safe="").replace(".", "%2E")


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("what", ["single", "cancel", "batch"])
@pytest.mark.parametrize("name", list(IDS))
def test_an_id_reaches_the_server_as_itself(runtime: str, what: str, name: str) -> None:
    job_id = IDS[name]
    with serving(_answer) as server:
        _call(runtime, server.base, what, job_id)
        (request,) = server.requests
    assert request.header("x-injected") is None
    split = urlsplit(request.target)
    if what == "batch":
        assert split.path == "/jobs"
        assert parse_qs(split.query) == {"ids": [job_id]}
        return
    expected = "/jobs/" + _segment(job_id) + ("/status/cancel" if what == "cancel" else "")
    assert (split.path, split.query, split.fragment) == (expected, "", "")
    assert unquote(split.path.split("/")[2]) == job_id
