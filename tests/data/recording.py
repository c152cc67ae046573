"""What the recording scripts share (``ray/record_ray.py``, ``mlflow/record_mlflow.py``):
a free loopback port, one JSON request with the standard library, and an answer as the
recordings keep it. The scripts run outside the test suite, in a venv that has the
recorded system installed; this file needs nothing but the standard library.
"""

import json
import socket
import urllib.error
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(method, url, body=None):
    """(status, content type, text) of one request, error statuses included."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def answer(status, ctype, text):
    """An answer as recorded: the body parsed when it is JSON, else its text."""
    try:
        body = json.loads(text)
    except ValueError:
        body = text
    return {"status_code": status, "content_type": ctype, "body": body}
