"""Model management on a backend without a model store: a pull of a
served model succeeds so `ollama run` proceeds; everything else is a clear Ollama-shaped error."""

from __future__ import annotations

import pytest

from tests.checks import ollama_error

from .helpers import lines, single

PULL_STEPS = ["pulling manifest", "verifying sha256 digest", "writing manifest", "success"]


@pytest.mark.parametrize("field", ["model", "name"])  # ollama-js sends the legacy `name`
@pytest.mark.parametrize("stream", [True, None])
def test_pull_of_a_served_model_streams_progress_to_success(client, backend, field, stream):
    request = {field: "llama3.2", "insecure": False}
    if stream is not None:
        request["stream"] = stream
    chunks = lines(client.post("/api/pull", json=request))
    assert [c["status"] for c in chunks] == PULL_STEPS
    assert chunks[-1] == {"status": "success"}


def test_pull_without_streaming_is_one_success_object(client, backend):
    response = client.post("/api/pull", json={"model": "Qwen/Qwen3-8B:latest", "stream": False})
    assert single(response) == {"status": "success"}


def test_pull_of_an_unknown_model_is_404(client, backend):
    message = ollama_error(client.post("/api/pull", json={"model": "ghost:7b"}), 404)
    assert "ghost:7b" in message


@pytest.mark.parametrize(
    ("path", "body", "action"),
    [
        ("/api/push", {"model": "llama3.2"}, "push"),
        ("/api/create", {"model": "mine", "from": "llama3.2"}, "create"),
        ("/api/copy", {"source": "llama3.2", "destination": "mine"}, "copy"),
    ],
)
def test_unsupported_operations_are_501(client, backend, path, body, action):
    message = ollama_error(client.post(path, json=body), 501)
    assert message.startswith(f"{action} is not supported")


def test_delete_of_a_served_model_is_501(client, backend):
    response = client.delete("/api/delete", json={"name": "llama3.2"})
    assert ollama_error(response, 501).startswith("delete is not supported")


def test_copy_of_an_unknown_source_is_404(client, backend):
    response = client.post("/api/copy", json={"source": "ghost", "destination": "x"})
    assert ollama_error(response, 404) == 'model "ghost" not found'


def test_delete_of_an_unknown_model_is_404(client, backend):
    response = client.delete("/api/delete", json={"model": "ghost"})
    assert ollama_error(response, 404) == "model 'ghost' not found"


@pytest.mark.parametrize("body", [{"source": "llama3.2"}, {"destination": "x"}])
def test_copy_needs_source_and_destination(client, backend, body):
    message = ollama_error(client.post("/api/copy", json=body), 400)
    missing = "destination" if "source" in body else "source"
    assert missing in message


DIGEST = "sha256:" + "ab" * 32


def test_head_blob_is_404(client):
    response = client.head(f"/api/blobs/{DIGEST}")
    assert response.status_code == 404
    assert response.content_type == "application/json; charset=utf-8"
    assert response.data == b""


def test_upload_blob_is_501(client):
    response = client.post(f"/api/blobs/{DIGEST}", data=b"\x00GGUF...")
    assert ollama_error(response, 501).startswith("uploading blobs is not supported")


def test_get_blob_is_405(client):
    assert ollama_error(client.get(f"/api/blobs/{DIGEST}"), 405)
