"""What Ollama clients see when the backend fails: the right status before a stream starts,
an error line (never a false `done`) after."""

from __future__ import annotations

import httpx
import ollama
import pytest


def test_backend_500_becomes_502_naming_the_backend_problem(client) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat("fake-chat", messages=[{"role": "user", "content": "[[status:500]]"}])
    assert caught.value.status_code == 502
    assert "HTTP 500" in caught.value.error
    assert "fake failure 500" in caught.value.error


@pytest.mark.parametrize("stream", [False, True])
def test_backend_429_keeps_status_and_retry_after(proxy, stream: bool) -> None:
    response = httpx.post(
        proxy.url + "/api/chat",
        json={
            "model": "fake-chat",
            "messages": [{"role": "user", "content": "[[status:429]]"}],
            "stream": stream,
        },
    )
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"error": "fake failure 429"}


def test_backend_dying_mid_stream_ends_with_an_error_not_done(client) -> None:
    received = []
    with pytest.raises(ollama.ResponseError) as caught:  # noqa: PT012
        for chunk in client.chat(
            "fake-chat",
            messages=[{"role": "user", "content": "a b c d e f [[die-after:3]]"}],
            stream=True,
        ):
            received.append(chunk)
    assert "broke in the middle of the answer" in caught.value.error
    assert received
    assert not any(chunk.done for chunk in received)


@pytest.mark.parametrize("marker", ["[[error-event]]", "[[garbage]]", "[[no-finish]]"])
def test_broken_streams_end_with_an_error_line(proxy, marker: str) -> None:
    response = httpx.post(
        proxy.url + "/api/generate",
        json={"model": "fake-chat", "prompt": f"one two three four {marker}"},
    )
    lines = response.text.splitlines()
    assert response.status_code == 200
    assert "error" in httpx.Response(200, content=lines[-1]).json()
    assert all('"done":true' not in line for line in lines)
