"""A job API's URL templates filled in: how a job id becomes part of a URL.

``ApiProfile.url`` / ``batch_url`` / ``cancel_url`` and ``SourceSpec`` hold templates
(``/jobs/{id}``, ``/jobs{?ids*}``; the core checks them, ``jobwait._profiles.
check_template``); this is where an id is written into one, percent-encoded, so no id
can leave its place in the URL.
"""

from __future__ import annotations

from urllib.parse import quote

from jobwait._plumbing import template_markers

__all__ = ["expand", "path_segment"]


def path_segment(job_id: str) -> str:
    """``job_id`` as one URL path segment: every character but letters, digits, ``-``,
    ``_`` and ``~`` percent-encoded, dots included (``%2E``): httpx removes ``.`` and
    ``..`` segments, so an id such as ``..``, ``../x``, ``a/b`` or ``a?b`` could otherwise
    reach another endpoint."""
    return quote(job_id, safe="").replace(".", "%2E")


def expand(template: str, ids: tuple[str, ...]) -> str:
    """A URL template filled in: ``{id}`` with the one id as a path segment
    (:func:`path_segment`), ``{ids}`` with the comma-separated segments, ``{?name*}`` /
    ``{&name*}`` with one percent-encoded ``name=id`` query parameter per id."""
    out = template
    for marker in template_markers(template):
        if marker == "id":
            value = path_segment(ids[0])
        elif marker == "ids":
            value = ",".join(path_segment(i) for i in ids)
        else:
            name = marker[1:-1]
            value = marker[0] + "&".join(f"{name}={quote(i, safe='')}" for i in ids)
        out = out.replace("{" + marker + "}", value, 1)
    return out
