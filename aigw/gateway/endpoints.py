"""Request paths as endpoint templates (`/v1/threads/{thread_id}/runs`) and the IDs they carry.

Log rows group by the template, never by raw IDs, so metrics add up per endpoint; the seed
app's rows with raw paths (`/v1/threads/thread_abc/runs`) map to the same template. Anything
before `/v1` (a gateway's own prefix) is dropped, and so is the query string.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

# A collection's segment → the name of the ID that may follow it (the OpenAPI spec's names).
COLLECTIONS = {
    "assistants": "assistant_id",
    "threads": "thread_id",
    "messages": "message_id",
    "runs": "run_id",
    "steps": "step_id",
    "files": "file_id",
    "vector_stores": "vector_store_id",
    "file_batches": "batch_id",
    "batches": "batch_id",
    "models": "model",
    "responses": "response_id",
}
# Segments that follow an ID (or a collection) and are not IDs themselves.
ACTIONS = frozenset({"cancel", "submit_tool_outputs", "content"})
# Outside the known collections, a segment that looks generated (has a digit and is long).
_LOOKS_LIKE_ID = re.compile(r"^(?=.*\d)[A-Za-z0-9_.:-]{8,}$")


class Endpoint(NamedTuple):
    template: str  # /v1/threads/{thread_id}/runs/{run_id}
    path: str  # the raw path, without the query string
    ids: dict[str, str]  # {"thread_id": "thread_abc", …}

    @property
    def listing(self) -> bool:
        """A collection (GET lists it): such a body has nothing a log row needs."""
        return self.template.rsplit("/", 1)[-1] in COLLECTIONS


def parse(path: str) -> Endpoint:
    """The template and IDs of a request path (or a full URL)."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    if "://" in path:
        path = "/" + path.split("://", 1)[1].partition("/")[2]
    segments = [s for s in path.split("/") if s]
    if "v1" in segments:
        segments = segments[segments.index("v1") :]
    out: list[str] = []
    ids: dict[str, str] = {}
    previous: str | None = None
    for segment in segments:
        name = COLLECTIONS.get(previous or "")
        if name and segment not in COLLECTIONS and segment not in ACTIONS:
            out.append("{" + name + "}")
            ids[name] = segment
            previous = None  # after an ID comes a collection or an action, not another ID
            continue
        if name is None and segment not in COLLECTIONS and _LOOKS_LIKE_ID.match(segment):
            out.append("{id}")
        else:
            out.append(segment)
        previous = segment
    return Endpoint("/" + "/".join(out), path, ids)


# A process meets the same few paths again and again: each is parsed once. (An Endpoint is a
# tuple and only read, so rows may share one.)
endpoint_of = functools.lru_cache(maxsize=1024)(parse)


def template(path: str) -> str:
    """The endpoint template of a raw path: /v1/threads/{thread_id}/runs."""
    return parse(path).template
