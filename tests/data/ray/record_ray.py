"""Record Ray Jobs REST answers from a real Ray head started on loopback.

Run with a Python that has ray[default] installed (not a jobwait dependency):

    python record_ray.py OUT.json

Starts `ray start --head` on 127.0.0.1 (dashboard on a free port), submits three
jobs through the Jobs REST API (one succeeds, one exits 3, one is stopped while it
runs), polls each GET /api/jobs/<id> every 0.2 s and keeps every distinct answer
(status, body), asks for an id that does not exist, and stops Ray.
"""

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import ray

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from recording import answer, call, free_port


def main(out):
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    port = free_port()
    bin_dir = os.path.dirname(sys.executable)
    ray_cli = os.path.join(bin_dir, "ray")
    subprocess.run(
        [
            ray_cli,
            "start",
            "--head",
            "--node-ip-address",
            "127.0.0.1",
            "--dashboard-host",
            "127.0.0.1",
            "--dashboard-port",
            str(port),
            "--include-dashboard",
            "true",
            "--num-cpus",
            "2",
            "--port",
            str(free_port()),
            "--disable-usage-stats",
        ],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if call("GET", base + "/api/version")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        version = json.loads(call("GET", base + "/api/version")[2])
        jobs = {
            "succeed": "python -c \"import time; time.sleep(3); print('done')\"",
            "fail": 'python -c "import sys, time; time.sleep(3); sys.exit(3)"',
            "stop": 'python -c "import time; time.sleep(120)"',
        }
        ids = {}
        for case, entrypoint in jobs.items():
            status, _, text = call("POST", base + "/api/jobs/", {"entrypoint": entrypoint})
            assert status == 200, text
            ids[case] = json.loads(text)["submission_id"]
        recorded = {case: [] for case in jobs}
        seen = {case: set() for case in jobs}
        stopped = False
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = 0
            for case, job_id in ids.items():
                got = call("GET", f"{base}/api/jobs/{job_id}")
                key = (got[0], json.loads(got[2]).get("status"), json.loads(got[2]).get("message"))
                if key not in seen[case]:
                    seen[case].add(key)
                    recorded[case].append(answer(*got))
                status = json.loads(got[2]).get("status")
                if case == "stop" and status == "RUNNING" and not stopped:
                    time.sleep(1)
                    stop = call("POST", f"{base}/api/jobs/{job_id}/stop")
                    recorded["stop_request"] = answer(*stop)
                    stopped = True
                if status in ("SUCCEEDED", "FAILED", "STOPPED"):
                    done += 1
            if done == len(ids):
                break
            time.sleep(0.2)
        recorded["unknown"] = [answer(*call("GET", f"{base}/api/jobs/raysubmit_doesnotexist00"))]
        result = {
            "recorded_with": {
                "ray": ray.__version__,
                "ray_version_api": version,
                "python": platform.python_version(),
                "date": time.strftime("%Y-%m-%d"),
                "how": "tests/data/ray/record_ray.py: ray start --head on 127.0.0.1, "
                "jobs submitted and polled through the Jobs REST API",
            },
            "answers": recorded,
        }
        with open(out, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
    finally:
        subprocess.run(
            [ray_cli, "stop", "--force"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


if __name__ == "__main__":
    main(sys.argv[1])
