"""The conformance matrix: one wait, one behaviour, whichever path runs it (issue 18).

What it proves
==============

A wait for one job must keep the same promises whether it runs alone or shares its
requests with other waits: the same outcome, the same error class, message and
``__cause__`` chain, the same ``polls`` and ``last_status`` on the error, the same
``on_status`` / ``on_poll`` calls, the same ``cancel=`` calls, and polls at the same
times (never earlier, at most one batch window later). Sharing may change *how many
requests* are sent, nothing else. The matrix runs every scenario through every path
and compares each caller with the lone sync wait of the same script.

The matrix
===========

Rows: about forty scenarios (``_scenarios.py``): status sequences (completion, failure
with ``raise_on_failure`` on and off, cancellation with ``raise_on_cancel`` on and off,
unknown statuses, a status that goes back), deadlines (``timeout=0``, a deadline while
a request stalls, a Retry-After past the deadline), 429 runs with and without
Retry-After, 5xx runs shorter and longer than ``max_fetch_errors``, connection resets,
non-JSON and wrong-shape bodies, an unknown id (404), a job that vanishes, per-job
options (``max_fetch_errors=2``, its own ``timeout`` and ``backoff``), ``on_status``
and ``on_poll`` hooks, the waiting task cancelled between polls and mid-request, a
push (``wakeup=Wakeup()`` woken between polls) and a remote ``cancel=`` on timeout.

Columns, each for both kinds of per-job API (``httpx.wait_for_url`` /
``async_wait_for_url``, one URL per job; ``ionq.wait_for_job`` /
``async_wait_for_job``, single read ``GET /jobs/{id}`` and batch read
``GET /jobs?ids=a&ids=b``):

=====================  ===================================================================
``sync`` (reference)   ``httpx.wait_for_url`` / ``ionq.wait_for_job`` (``sync.wait``),
                       virtual clock; ``test_lone_sync`` pins it to the scenario's
                       declared outcome and poll count
``asyncio-lone``       ``async_wait_for_url`` / ``async_wait_for_job`` with ``shared=False``
``trio-lone``          the same under trio
``asyncio-shared``     the defaults (shared), the job alone on its client
``trio-shared``        the same under trio
``*-shared+20``        the defaults beside 20 neighbours: other concurrent waits on the
                       same client with plain scripts, each compared with its own lone
                       wait too
``sync-fleet``         ``httpx.wait_for_batch`` / ``ionq.wait_for_jobs`` (``sync.wait_all``)
``asyncio-fleet``      ``httpx.async_wait_for_batch`` / ``ionq.async_wait_for_jobs``
``trio-fleet``         the same under trio
``celery``             a subset through the durable shard (``DurableWaits.run_shard`` in
                       this process) on a real redis-server (``test_celery.py``)
=====================  ===================================================================

Every cell is its own test id: ``test_matrix[<path>-<kind>-<scenario>]``.

The rules
=========

- **The server** (``_server.py``) is scripted per job id and answers single and batch
  reads from the same script; every request that meets a step consumes it, and those
  times are the job's poll times. A batch of one id answers that job's step (a fault is
  the whole answer); a batch of several ids lists the jobs whose step is a job answer
  and leaves out, *without consuming*, those whose step is a fault (HTTP error, reset,
  stall, non-JSON or non-object body). The module explains why: one job's fault must
  not become its neighbours' failure, or no implementation could keep their promises.
- **Time** is virtual wherever the path allows: the sync paths take an injected clock
  and sleep (``SyncClock``, with timers for wakes and ``KeyboardInterrupt``), trio runs
  on ``MockClock(autojump_threshold=0)``, asyncio on a virtual-time event loop
  (``_vloop.py``, trio's autojump for asyncio). So the matrix is deterministic and
  fast (about 40 s of virtual waiting per cell run in milliseconds). Only the Celery
  cells run in real time (the shard reads the Redis clock).
- **Comparison** (``_compare.differences``): outcome (the job; or the error's class
  and message, times in it masked), the ``__cause__`` chain's classes, ``polls``,
  ``last_status``, the hooks' calls (``on_poll``: status, polls, error class, last
  poll or not), poll times and the wait's end (lone paths: within 0.02 s; shared and
  fleet paths: never earlier, at most one batch window, 0.1 s, later), ``cancel=``
  calls. A cancelled wait's outcome is ``interrupted`` (``CancelledError``, trio's
  ``Cancelled``, ``KeyboardInterrupt``).
- **The one difference allowed**: the fleet APIs keep their documented fleet-wide
  rule, the ``max_batch_errors`` budget (default 5, consecutive failed batches) in place
  of each job's ``max_fetch_errors``. Their reference is the lone wait with
  ``max_fetch_errors=5`` and an error message naming that budget
  (``_compare.FLEET_RULE``). The shared per-job waits have no such rule. The Celery
  shard is a fleet too, and its outcomes cross Redis as JSON (one level of cause, a
  ``RemoteError`` naming the original class; jobwait's own error classes for either
  source): it is compared with the httpx reference under the fleet rule, one cause deep.

``test_mutations.py`` shows the comparison fails for a wait that breaks a promise.
"""
