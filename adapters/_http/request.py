"""One bounded HTTP request: every request jobwait sends goes through here.

Polls, batch polls, cancel requests and the IonQ helpers all call :func:`request`
(sync) or :func:`arequest` (asyncio and trio, through the :class:`Runtime` seam), so
they all get the same bounds:

- **Decoded size.** The body is read raw (``iter_raw``) and decoded here, one stacked
  ``Content-Encoding`` at a time (``gzip``, ``deflate``, ``br`` when ``brotli`` >= 1.2 is
  installed, ``identity``), each step producing at most 64 KiB per call; the read stops
  as soon as the decoded body passes ``max_body_size``. Peak memory is about
  ``max_body_size`` plus one read chunk plus 64 KiB per encoding, whatever a bomb would
  inflate to. (httpx's own decoders inflate a whole read at once and a size check can
  only come afterwards: a 1.7 KB ``gzip, gzip`` answer grows by hundreds of MiB.) The raw
  bytes are capped too (``max_body_size`` + 64 KiB), so a stream that decodes to
  nothing still ends.
- **Time.** Each phase's timeout (connect, read, write, pool) is the client's own,
  lowered to the time left before the deadline but not below ``timeout_floor``; the
  request as a whole is bounded by :func:`whole_request_limit`: the smaller of the
  client's timeout read as a whole-request limit (its largest phase timeout) and the
  time left (at least ``timeout_floor``). Async requests are cancelled at that bound;
  a sync request checks it after every read, so it ends at most one read timeout late.
- **Secrets.** The credentials a request carries (:func:`credentials_of`: the core's
  one rule and one redactor) are replaced by ``***`` in the body and headers before
  anything reads them, and an httpx error whose text quotes one is replaced by the
  same error with the text redacted (no chained cause keeps the original).

Nothing here decides what an answer means: :meth:`Answer.read` hands it to
:func:`jobwait.http.read_response`.
"""

from __future__ import annotations

import gc
import importlib
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from types import AsyncGeneratorType
from typing import Any, Final, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx

from jobwait import Fetched
from jobwait._plumbing import Redactor, body_too_large, secret_values
from jobwait.http import DEFAULT_MAX_BODY_SIZE, ResponseError, read_response, request_timeout

from .._runtime.loop import Runtime, current_runtime

__all__ = [
    "Answer",
    "arequest",
    "clean_secret",
    "credentials_of",
    "job_name",
    "request",
    "whole_request_limit",
]

#: Most bytes one decoding step may produce per call (and the raw slack past the cap).
STEP = 64 * 1024

try:  # brotli >= 1.2 can bound its output per call; older ones (and brotlicffi) cannot
    _brotli: Any = importlib.import_module("brotli")
    if not hasattr(_brotli.Decompressor(), "can_accept_more_data"):
        _brotli = None
except ImportError:
    _brotli = None

ClientTimeout = Literal["client"]


# --- decoding with a bounded output ---------------------------------------------------


class _BodyTooLargeError(Exception):
    """The decoded (or raw) body passed its cap; :func:`request` turns it into a
    non-retryable :class:`~jobwait.http.ResponseError`."""


class _Zlib:
    """gzip (``wbits=31``) or deflate (zlib-wrapped, falling back to raw deflate on the
    first bytes, as httpx does)."""

    def __init__(self, wbits: int, *, deflate: bool = False) -> None:
        self._d = zlib.decompressobj(wbits)
        self._fallback = deflate  # a raw-deflate retry is allowed until the first output

    def decode(self, data: bytes) -> Iterator[bytes]:
        d = self._d
        try:
            out = d.decompress(data, STEP)
        except zlib.error as exc:
            if not self._fallback:
                raise httpx.DecodingError(f"the body does not decode: {exc}") from exc
            self._fallback = False
            self._d = d = zlib.decompressobj(-zlib.MAX_WBITS)
            out = self._inflate(d, data)
        self._fallback = False
        while True:
            if out:
                yield out
            # After the end of the stream the rest is ignored, as httpx does.
            if d.eof or (not d.unconsumed_tail and len(out) < STEP):
                return
            out = self._inflate(d, d.unconsumed_tail)

    @staticmethod
    def _inflate(d: Any, data: bytes) -> bytes:
        try:
            out: bytes = d.decompress(data, STEP)
        except zlib.error as exc:
            raise httpx.DecodingError(f"the body does not decode: {exc}") from exc
        return out


class _Brotli:
    def __init__(self) -> None:
        self._d = _brotli.Decompressor()

    def decode(self, data: bytes) -> Iterator[bytes]:
        d = self._d
        try:
            out: bytes = d.process(data, output_buffer_limit=STEP)
            # Input it could not turn into output yet stays buffered inside (and
            # can_accept_more_data() may be True meanwhile): drain with empty input until
            # nothing more comes out.
            while out:
                yield out
                if d.is_finished():
                    return
                out = d.process(b"", output_buffer_limit=STEP)
        except _brotli.error as exc:
            raise httpx.DecodingError(f"the body does not decode: {exc}") from exc


_Stage = _Zlib | _Brotli
_KNOWN = {"gzip", "x-gzip", "deflate", "br", "zstd", "compress", "x-compress"}


def _stage(encoding: str) -> _Stage | None:
    if encoding in ("gzip", "x-gzip"):
        return _Zlib(zlib.MAX_WBITS | 16)
    if encoding == "deflate":
        return _Zlib(zlib.MAX_WBITS, deflate=True)
    if encoding == "br" and _brotli is not None:
        return _Brotli()
    return None


class Decoder:
    """Decode a body as it arrives, bounded: :meth:`feed` raw bytes, read :attr:`body`.

    Sans-IO and synchronous: both request functions feed it. Encodings are undone in
    reverse order of the ``Content-Encoding`` list; ``identity`` and unknown names are
    left as they are (as httpx does).

    Raises:
        ResponseError: (from the constructor, via ``undecodable``) an encoding jobwait
            knows but cannot decode with a bounded output (``zstd``, ``compress``, ``br``
            without ``brotli`` >= 1.2).
    """

    def __init__(self, encodings: list[str], limit: int) -> None:
        self.limit = limit
        self.raw = 0
        self.body = bytearray()
        self.undecodable: str | None = None
        stages: list[_Stage] = []
        for name in reversed([e.strip().lower() for e in encodings]):
            if not name or name == "identity":
                continue
            stage = _stage(name)
            if stage is not None:
                stages.append(stage)
            elif name in _KNOWN:
                self.undecodable = name
        self._stages = stages
        #: Whether any encoding is undone (the raw bytes may then pass ``limit`` a little).
        self.encoded = bool(stages)

    def feed(self, data: bytes) -> None:
        """Decode ``data`` onto :attr:`body`.

        Raises:
            _BodyTooLargeError: The decoded body passed ``limit`` (or the raw bytes passed
                ``limit`` + 64 KiB).
            httpx.DecodingError: The bytes do not decode.
        """
        self.raw += len(data)
        if self.raw > self.limit + STEP:
            raise _BodyTooLargeError
        for piece in self._push(0, data):
            self.body += piece
            if len(self.body) > self.limit:
                raise _BodyTooLargeError

    def _push(self, index: int, data: bytes) -> Iterator[bytes]:
        # Depth first: each piece a stage yields is taken all the way through before the
        # stage makes the next, so no stage ever holds more than one step of output.
        if index == len(self._stages):
            yield data
            return
        for piece in self._stages[index].decode(data):
            yield from self._push(index + 1, piece)


# --- secrets -----------------------------------------------------------------------------


def credentials_of(request: httpx.Request) -> Redactor:
    """The redactor of the secrets a request carries: the core's one rule
    (:func:`jobwait._plumbing.secret_values`) applied to its headers and URL password."""
    return Redactor(secret_values(request.headers.multi_items(), password=request.url.password))


# Query parameters that carry a job's id (MLflow's runs/get?run_id=, Databricks'
# runs/get?run_id=, ...), in the order they are tried.
_ID_PARAMETERS: Final = ("run_id", "runId", "job_id", "jobId", "task_id", "taskId", "id")
# Path segments that name an operation, not a job (".../runs/get", ".../jobs/42/status").
_VERBS: Final = frozenset({"get", "status", "state", "info", "details", "describe", "show"})


def job_name(url: str) -> str | None:
    """The job's name for messages, read from its URL: an id-like query parameter
    (``run_id``, ``job_id``, ``id``, ...: ``.../runs/get?run_id=42`` -> ``42``), else the
    last path segment that is not an operation's name (``get``, ``status``, ``info``,
    ...), percent-decoded (``.../api/task/info/9139`` -> ``9139``); ``None`` for a
    bare host. Characters that are not printable become ``?``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    query = dict(parse_qsl(parts.query))
    name = next((query[p] for p in _ID_PARAMETERS if query.get(p)), None)
    if name is None:
        segments = [unquote(s) for s in parts.path.split("/") if s]
        meaningful = [s for s in segments if s.lower() not in _VERBS] or segments
        name = meaningful[-1] if meaningful else None
    return None if name is None else "".join(c if c.isprintable() else "?" for c in name)


def _unsendable_headers(request: httpx.Request) -> list[str]:
    return [
        name
        for name, value in request.headers.multi_items()
        if value != value.strip(" \t") or any(c in value for c in "\r\n\0")
    ]


def _scrubbed(error: httpx.HTTPError, request: httpx.Request) -> httpx.HTTPError | None:
    """The same kind of error without any secret in its text, or ``None`` when its text
    holds none (then re-raise the original)."""
    text = str(error)
    clean = credentials_of(request)(text)
    bad = _unsendable_headers(request) if isinstance(error, httpx.LocalProtocolError) else []
    if bad:
        names = ", ".join(repr(n) for n in bad)
        clean = (
            f"the request's {names} header value cannot be sent: it has whitespace at "
            "either end or a line break inside (the value is not shown); strip the "
            "secret where it is read (a key file, a CRLF .env file)"
        )
    elif clean == text:
        return None
    try:
        scrubbed: httpx.HTTPError = type(error)(clean)
    except Exception:  # noqa: BLE001 - a subclass with another signature: keep the family
        scrubbed = httpx.TransportError(clean)
    return scrubbed


def clean_secret(value: str, *, name: str) -> str:
    """A secret as it should be sent: surrounding whitespace stripped (a trailing newline
    from ``open("key").read()``, a CR from a CRLF ``.env`` file).

    Args:
        value: The secret.
        name: Where it came from, for the error (``"api_key"``, ``"IONQ_API_KEY"``).

    Raises:
        ValueError: The secret is empty, or has a control or non-ASCII character inside
            (names ``name``, never shows the value).
    """
    text = value.strip()
    if not text:
        raise ValueError(f"{name} is empty (or only whitespace): set it to your key")
    if any(not (32 <= ord(c) < 127) for c in text):
        raise ValueError(
            f"{name} has a control or non-ASCII character inside it, which an HTTP header "
            "cannot carry (the value is not shown): check where the key is read from"
        )
    return text


# --- the request ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """A whole answer, read within its bounds: status, headers and the decoded body
    (at most ``max_body_size`` bytes, credentials redacted)."""

    status_code: int
    headers: httpx.Headers
    body: bytes

    def read(
        self,
        *,
        wall_now: float,
        retry_invalid_body: bool = True,
        job_id: str | None = None,
        reader: Callable[..., Fetched] = read_response,
    ) -> Fetched:
        """This answer read by ``reader`` (default :func:`jobwait.http.read_response`; an
        :class:`~jobwait.ApiProfile`'s ``read_response`` reads its API's quirks first):
        the job, or the classified error.

        Raises:
            ResponseError: A non-2xx status.
            JobStatusError: A 2xx body that is not a JSON object.
        """
        return reader(
            self.status_code,
            self.headers.multi_items(),
            self.body,
            wall_now=wall_now,
            retry_invalid_body=retry_invalid_body,
            job_id=job_id,
        )


def whole_request_limit(
    timeout: httpx.Timeout, time_left: float | None, floor: float = 1.0
) -> float | None:
    """Seconds one request may take as a whole: ``min(T, max(time_left, floor))``, where
    ``T`` is the largest of the client's phase timeouts (``None`` when every phase is
    unbounded) and ``time_left`` is ``None`` without a deadline. ``None``: no bound."""
    phases = [t for t in (timeout.connect, timeout.read, timeout.write, timeout.pool) if t]
    return request_timeout(max(phases) if phases else None, time_left, floor=floor)


def _phase_timeouts(timeout: httpx.Timeout, left: float | None, floor: float) -> httpx.Timeout:
    return httpx.Timeout(
        connect=request_timeout(timeout.connect, left, floor=floor),
        read=request_timeout(timeout.read, left, floor=floor),
        write=request_timeout(timeout.write, left, floor=floor),
        pool=request_timeout(timeout.pool, left, floor=floor),
    )


def _build(
    client: httpx.Client | httpx.AsyncClient,
    method: str,
    url: str | httpx.URL,
    timeout: float | httpx.Timeout | ClientTimeout | None,
    time_left: float | None,
    floor: float,
    json: Any,
) -> tuple[httpx.Request, float | None]:
    base = client.timeout if timeout == "client" else httpx.Timeout(timeout)
    built = client.build_request(
        method, url, json=json, timeout=_phase_timeouts(base, time_left, floor)
    )
    return built, whole_request_limit(base, time_left, floor)


def _redirect(
    client: httpx.Client | httpx.AsyncClient, response: httpx.Response, hops: int
) -> httpx.Request | None:
    """The next request of a redirect the client follows, or ``None``.

    jobwait follows redirects itself (as the client would: its ``follow_redirects`` and
    ``max_redirects``, httpx's own next request, which drops ``Authorization`` across
    origins) because httpx reads each redirect's body whole, with no cap.

    Raises:
        httpx.TooManyRedirects: Past the client's ``max_redirects``.
    """
    hop = response.next_request
    if hop is None or not client.follow_redirects:
        return None
    if hops >= client.max_redirects:
        raise httpx.TooManyRedirects("Exceeded maximum allowed redirects.", request=hop)
    return hop


def _decoder(response: httpx.Response, limit: int) -> Decoder:
    if response.is_stream_consumed:
        # Built already read (httpx.MockTransport, a transport that reads eagerly):
        # httpx has decoded it; only the cap is left to check.
        decoder = Decoder([], limit)
        decoder.feed(response.content)
        return decoder
    decoder = Decoder(response.headers.get_list("content-encoding", split_commas=True), limit)
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + (STEP if decoder.encoded else 0):
        raise _BodyTooLargeError
    if decoder.undecodable is not None:
        raise ResponseError(
            f"HTTP {response.status_code} body is encoded with {decoder.undecodable!r}, which "
            "jobwait cannot decode within a bounded size: leave it out of the client's "
            "Accept-Encoding header",
            status_code=response.status_code,
            request_id=response.headers.get("x-request-id"),
        )
    return decoder


async def _close_nested(chunks: AsyncIterator[bytes]) -> None:
    """Close an abandoned ``aiter_raw()`` now, and the async generators it iterates.

    httpx reads through a chain of nested async generators (its own, then httpcore's);
    closing the outer one does not close the ones it was iterating, which are left to
    the garbage collector (under trio, a ResourceWarning each). httpx offers no public
    way to reach them, so they are found through ``gc.get_referents`` (CPython keeps a
    suspended generator's iterators there) and closed outer first. Elsewhere nothing
    is found and the collector closes them as before.
    """
    chain: list[Any] = []
    todo: list[Any] = [chunks]
    while todo:
        agen = todo.pop()
        if isinstance(agen, AsyncGeneratorType) and agen.ag_frame is not None:
            chain.append(agen)
            todo += [r for r in gc.get_referents(agen) if isinstance(r, AsyncGeneratorType)]
    failure: BaseException | None = None
    for agen in chain:
        try:
            await agen.aclose()
        except BaseException as exc:  # noqa: BLE001 - re-raised below, after closing the rest
            failure = failure or exc
    if failure is not None:
        raise failure


def _too_large(response: httpx.Response, limit: int) -> ResponseError:
    return body_too_large(
        response.status_code, limit, request_id=response.headers.get("x-request-id")
    )


def _answer(response: httpx.Response, decoder: Decoder, request: httpx.Request) -> Answer:
    redact = credentials_of(request)
    headers = response.headers
    if redact and any(redact.exact(v) != v for v in headers.values()):
        headers = httpx.Headers([(k, redact.exact(v)) for k, v in headers.multi_items()])
    return Answer(
        status_code=response.status_code,
        headers=headers,
        body=redact.exact(bytes(decoder.body)),
    )


def request(
    client: httpx.Client,
    method: str,
    url: str | httpx.URL,
    *,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    time_left: float | None = None,
    timeout_floor: float = 1.0,
    timeout: float | httpx.Timeout | ClientTimeout | None = "client",
    json: Any = None,
    clock: Callable[[], float] = time.monotonic,
) -> Answer:
    """Send one request with ``client`` and read its whole answer, within every bound.

    Args:
        client: The caller's ``httpx.Client`` (base URL, auth, redirects, transport).
        method: ``"GET"``, ``"PUT"``, ...
        url: Absolute, or relative to the client's base URL.
        max_body_size: Most bytes of decoded body read (default 1 MiB).
        time_left: Seconds before the job's deadline (``JobWaiter.time_left``), or
            ``None`` without one.
        timeout_floor: Least seconds any request may take (default 1).
        timeout: ``"client"`` (default) for the client's own timeout, or an
            ``httpx.Timeout`` / seconds / ``None`` for this request.
        json: A JSON body to send, if any.
        clock: Monotonic seconds, for the whole-request bound.

    Returns:
        The :class:`Answer`; call ``answer.read(wall_now=...)`` for the job.

    Raises:
        ResponseError: The body passed ``max_body_size`` after decoding, or has an
            encoding jobwait cannot decode within a bound (neither retryable).
        TimeoutError: The request took longer than :func:`whole_request_limit` (checked
            after each read).
        httpx.HTTPError: Transport trouble or an undecodable body, its text redacted.
    """
    built, whole = _build(client, method, url, timeout, time_left, timeout_floor, json)
    expires = None if whole is None else clock() + whole
    failure: httpx.HTTPError | None = None
    try:
        response = client.send(built, stream=True, follow_redirects=False)
        hops = 0
        while (hop := _redirect(client, response, hops)) is not None:
            response.close()  # a redirect's body is never read (httpx would read it whole)
            if expires is not None and clock() > expires:
                raise TimeoutError(f"the request took longer than {whole:g}s as a whole")
            response, hops = client.send(hop, stream=True, follow_redirects=False), hops + 1
        try:
            try:
                decoder = _decoder(response, max_body_size)
                for raw in () if response.is_stream_consumed else response.iter_raw():
                    decoder.feed(raw)
                    if expires is not None and clock() > expires:
                        raise TimeoutError(f"the request took longer than {whole:g}s as a whole")
            except _BodyTooLargeError:
                raise _too_large(response, max_body_size) from None
            return _answer(response, decoder, built)
        finally:
            response.close()
    except httpx.HTTPError as exc:
        failure = _scrubbed(exc, built)
        if failure is None:
            raise
    raise failure  # outside the handler: the original (with the secret) is not chained


async def arequest(
    client: httpx.AsyncClient,
    method: str,
    url: str | httpx.URL,
    *,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    time_left: float | None = None,
    timeout_floor: float = 1.0,
    timeout: float | httpx.Timeout | ClientTimeout | None = "client",  # noqa: ASYNC109 - httpx's, per phase
    json: Any = None,
    runtime: Runtime | None = None,
) -> Answer:
    """Async :func:`request` (asyncio or trio): same arguments, result and errors, and
    the whole-request bound is a cancel scope (``asyncio.timeout`` /
    ``trio.move_on_after``), so it holds while headers or a body drip in.

    Args:
        runtime: The :class:`Runtime` (default: the running one's).

    Raises:
        TimeoutError: The request took longer than :func:`whole_request_limit`.
        RuntimeError: Outside asyncio and trio.
    """
    rt = runtime or current_runtime()
    built, whole = _build(client, method, url, timeout, time_left, timeout_floor, json)
    failure: httpx.HTTPError | None = None
    try:
        async with rt.limit(whole):
            response = await client.send(built, stream=True, follow_redirects=False)
            hops = 0
            while (hop := _redirect(client, response, hops)) is not None:
                await response.aclose()
                response = await client.send(hop, stream=True, follow_redirects=False)
                hops += 1
            try:
                try:
                    decoder = _decoder(response, max_body_size)
                    if not response.is_stream_consumed:
                        chunks = response.aiter_raw()
                        try:
                            async for raw in chunks:
                                decoder.feed(raw)
                        finally:
                            await _close_nested(chunks)
                except _BodyTooLargeError:
                    raise _too_large(response, max_body_size) from None
                return _answer(response, decoder, built)
            finally:
                await response.aclose()
    except httpx.HTTPError as exc:
        failure = _scrubbed(exc, built)
        if failure is None:
            raise
    raise failure
