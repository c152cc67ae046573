"""What a source description can say beyond URL templates and credentials: non-secret
headers, a base URL from an engine's connection, and a profile of the user's own named
by its import path; and what the sources built from it send (``httpx.MockTransport``:
the request itself is the point here, not a server)."""

from __future__ import annotations

import httpx
import pytest

from jobwait import ApiProfile, Statuses
from jobwait._durable import Credential, SourceSpec
from jobwait.adapters._durable import build_source, ionq_spec, no_base_url

#: A profile of "the user's own", importable as ``test_durable_descriptions:ACME``.
ACME = ApiProfile(
    name="acme",
    statuses=Statuses(
        pending={"QUEUED", "RUNNING"}, succeeded={"DONE"}, failed={"BROKEN"}, canceled={"STOPPED"}
    ),
    status_of=lambda job: job["state"]["phase"],
)
NOT_A_PROFILE = "acme"


def test_durable_spec_carries_static_headers_as_pairs() -> None:
    spec = SourceSpec(
        url="/jobs/{id}",
        headers={"Accept": "application/json", "X-Api-Version": "2"},
        credentials=(Credential(env="ACME_TOKEN", scheme="Bearer"),),
    )
    assert spec.headers == (("Accept", "application/json"), ("X-Api-Version", "2"))
    assert spec.to_json()["headers"] == [["Accept", "application/json"], ["X-Api-Version", "2"]]
    assert SourceSpec.from_json(spec.to_json()) == spec


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"Authorization": "x"}, "one header twice"),  # the credential's header
        ({"Bad Name": "x"}, "not an HTTP header"),
        ({"X-A": "line\nbreak"}, "printable ASCII"),
        ({"X-A": "é"}, "printable ASCII"),
        ([("X-A", "1", "2")], "not a \\(name, value\\)"),
        ({f"X-{i}": "v" for i in range(65)}, "at most 64"),
    ],
)
def test_durable_spec_refuses_headers_it_cannot_send(headers: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SourceSpec(
            url="/jobs/{id}",
            headers=headers,  # type: ignore[arg-type]
            credentials=(Credential(env="ACME_TOKEN"),),
        )


def test_durable_spec_reads_back_only_header_pairs() -> None:
    data = SourceSpec(url="/jobs/{id}").to_json()
    for bad in ({"Accept": "x"}, [["Accept"]], "Accept: x"):
        with pytest.raises(ValueError, match="headers"):
            SourceSpec.from_json({**data, "headers": bad})


def test_durable_spec_names_a_connection_for_its_base_url() -> None:
    spec = SourceSpec(url="/jobs/{id}", base_url="https://fallback", base_url_conn_id="acme_api")
    assert SourceSpec.from_json(spec.to_json()) == spec
    with pytest.raises(ValueError, match="connection id"):
        SourceSpec(url="/jobs/{id}", base_url_conn_id="has space")
    with pytest.raises(ValueError, match="connection id"):
        SourceSpec(url="/jobs/{id}", base_url_conn_id="")


def test_durable_spec_imports_a_profile_of_the_users_own_by_its_path() -> None:
    spec = SourceSpec(api="test_durable_descriptions:ACME", url="/jobs/{id}")
    assert spec.profile is ACME
    assert spec.status_of({"state": {"phase": "DONE"}}) == "DONE"
    assert spec.waiter_options()["statuses"] is ACME.statuses
    assert SourceSpec.from_json(spec.to_json()).profile is ACME  # the path travels
    for api, message in [
        ("no_such_module_here:ACME", "ModuleNotFoundError"),
        ("test_durable_descriptions:MISSING", "AttributeError"),
        ("test_durable_descriptions:NOT_A_PROFILE", "names a str, not an ApiProfile"),
        ("os.path:join()", "profile name or 'module:NAME'"),
    ]:
        with pytest.raises(ValueError, match=message):
            SourceSpec(api=api, url="/jobs/{id}")


def _capture() -> tuple[list[httpx.Request], httpx.MockTransport]:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        job = {"id": "a", "status": "completed"}
        return httpx.Response(200, json={"jobs": [job]} if request.url.query else job)

    return seen, httpx.MockTransport(answer)


def test_durable_source_sends_static_headers_under_the_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ACME_TOKEN", "tok-123")
    seen, transport = _capture()
    spec = SourceSpec(
        base_url="https://acme.example",
        url="/v1/jobs/{id}",
        headers={"Accept": "application/json"},
        credentials=(Credential(env="ACME_TOKEN", scheme="Bearer"),),
    )
    source = build_source(spec, transport=transport, headers={"User-Agent": "mine"})
    try:
        assert source.fetch_many(("a",)).job["a"]["status"] == "completed"
    finally:
        source.close()  # type: ignore[misc]
    (request,) = seen
    assert str(request.url) == "https://acme.example/v1/jobs/a"
    assert request.headers["accept"] == "application/json"
    assert request.headers["user-agent"] == "mine"
    assert request.headers["authorization"] == "Bearer tok-123"


def test_durable_source_base_url_comes_from_the_env_then_the_connection_then_the_spec(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = ionq_spec(
        api_key_env=None,
        conn_id="ionq_conn",
        base_url="https://spec.example/v0.4",
        base_url_env="ACME_BASE",
        base_url_conn_id="ionq_conn",
    )
    hosts = {"ionq_conn": "https://conn.example/v0.4"}
    asked: list[str] = []

    def base_url_of(conn_id: str) -> str | None:
        asked.append(conn_id)
        return hosts.get(conn_id)

    def url_read(**env: str) -> str:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        seen, transport = _capture()
        source = build_source(
            spec, resolve=lambda c: "key", base_url_of=base_url_of, transport=transport
        )
        try:
            source.fetch_many(("a",))
        finally:
            source.close()  # type: ignore[misc]
        return str(seen[0].url)

    monkeypatch.delenv("ACME_BASE", raising=False)
    assert url_read() == "https://conn.example/v0.4/jobs?ids=a"
    assert asked == ["ionq_conn"]
    hosts.clear()  # a connection without a host: the spec's own
    assert url_read() == "https://spec.example/v0.4/jobs?ids=a"
    assert url_read(ACME_BASE="https://env.example/v0.4") == "https://env.example/v0.4/jobs?ids=a"


def test_durable_source_without_an_engine_says_which_connection_it_needs() -> None:
    spec = SourceSpec(url="/jobs/{id}", base_url_conn_id="acme_api")
    with pytest.raises(LookupError, match="acme_api"):
        build_source(spec)
    with pytest.raises(LookupError, match="base_url_of"):
        no_base_url("acme_api")
