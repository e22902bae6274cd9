"""Model management (`pull`, `push`, `create`, `copy`, `delete`, blobs) on a backend that has
no model store. A pull of a model the backend serves succeeds, so `ollama run` and UIs that
pull before use keep working; everything else is a clear error in Ollama's shape."""

from __future__ import annotations

from collections.abc import Iterator

from flask import Response

from ..body import json_body
from ..errors import NotFound, ProxyError
from ..replies import NDJSON_MIMETYPE, STREAM_HEADERS, json_response
from ..services import services
from ..validation import load
from ..wire import ndjson
from . import bp
from .schemas import copy_schema, model_schema

NOT_SUPPORTED = 501
_PULL_STEPS = ("pulling manifest", "verifying sha256 digest", "writing manifest", "success")


def _unsupported(action: str) -> ProxyError:
    return ProxyError(
        f"{action} is not supported: this server proxies an OpenAI-compatible backend "
        "and has no local model store",
        NOT_SUPPORTED,
    )


@bp.post("/api/pull")
def pull() -> Response:
    request = load(model_schema, json_body())
    try:
        services().catalogue.resolve(request.model)
    except NotFound:
        raise NotFound(
            f'pull model manifest: file does not exist: model "{request.model}" is not '
            "served by the backend"
        ) from None
    if not request.stream:
        return json_response({"status": "success"})

    def progress() -> Iterator[bytes]:
        for status in _PULL_STEPS:
            yield ndjson({"status": status})

    return Response(progress(), mimetype=NDJSON_MIMETYPE, headers=STREAM_HEADERS)


@bp.post("/api/push")
def push() -> Response:
    raise _unsupported("push")


@bp.post("/api/create")
def create() -> Response:
    raise _unsupported("create")


@bp.post("/api/copy")
def copy() -> Response:
    request = load(copy_schema, json_body())
    try:
        services().catalogue.resolve(request.source)
    except NotFound:  # a 404, worded as Ollama's copy words it
        raise NotFound(f'model "{request.source}" not found') from None
    raise _unsupported("copy")


@bp.delete("/api/delete")
def delete() -> Response:
    request = load(model_schema, json_body())
    services().catalogue.resolve(request.model)
    raise _unsupported("delete")


@bp.route("/api/blobs/<digest>", methods=["HEAD"])
def has_blob(digest: str) -> Response:
    # No blob is ever stored here; 404 tells `ollama create` it would have to upload.
    raise NotFound(f'blob "{digest}" not found')


@bp.post("/api/blobs/<digest>")
def upload_blob(digest: str) -> Response:
    raise _unsupported("uploading blobs")
