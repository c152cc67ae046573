"""Record MLflow tracking-server answers from a real server started on loopback.

Run with a Python that has mlflow installed (not a jobwait dependency: it takes about
a minute to install, too long for the test extra):

    python record_mlflow.py OUT.json

Starts ``mlflow server`` on 127.0.0.1 (SQLite backend in a temporary folder), creates
three runs through the REST API and ends them as a training script does (one
FINISHED, one FAILED, one KILLED, each seen RUNNING first), records every
``GET /api/2.0/mlflow/runs/get?run_id=...`` answer, asks for a run id that does not
exist and for a malformed one, and stops the server.
"""

import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlflow

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from recording import answer, call, free_port


def main(out):
    port = free_port()
    with tempfile.TemporaryDirectory() as home:
        server = subprocess.Popen(
            [
                os.path.join(os.path.dirname(sys.executable), "mlflow"),
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--backend-store-uri",
                f"sqlite:///{home}/mlflow.db",
                "--default-artifact-root",
                f"{home}/artifacts",
                "--workers",
                "1",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}/api/2.0/mlflow"
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    if call("GET", f"http://127.0.0.1:{port}/health")[0] == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.3)
            _, _, text = call("POST", base + "/experiments/create", {"name": "jobwait"})
            experiment = json.loads(text)["experiment_id"]
            recorded = {}
            for case, end in (("succeed", "FINISHED"), ("fail", "FAILED"), ("kill", "KILLED")):
                _, _, text = call(
                    "POST",
                    base + "/runs/create",
                    {
                        "experiment_id": experiment,
                        "run_name": case,
                        "start_time": int(time.time() * 1000),
                    },
                )
                run_id = json.loads(text)["run"]["info"]["run_id"]
                url = f"{base}/runs/get?run_id={run_id}"
                recorded[case] = [answer(*call("GET", url))]
                call(
                    "POST",
                    base + "/runs/update",
                    {"run_id": run_id, "status": end, "end_time": int(time.time() * 1000)},
                )
                recorded[case].append(answer(*call("GET", url)))
            recorded["unknown"] = [
                answer(*call("GET", f"{base}/runs/get?run_id=0123456789abcdef0123456789abcdef"))
            ]
            recorded["malformed"] = [answer(*call("GET", f"{base}/runs/get?run_id="))]
            result = {
                "recorded_with": {
                    "mlflow": mlflow.__version__,
                    "python": platform.python_version(),
                    "date": time.strftime("%Y-%m-%d"),
                    "how": "tests/data/mlflow/record_mlflow.py: mlflow server on 127.0.0.1 "
                    "(SQLite), runs created and ended through the REST API",
                },
                "answers": recorded,
            }
            with open(out, "w") as f:
                json.dump(result, f, indent=1)
                f.write("\n")
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)


if __name__ == "__main__":
    main(sys.argv[1])
