"""Many clients at once: every stream gets its own complete answer."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import ollama

STREAMS = 50


def _stream(url: str, number: int) -> tuple[str, bool]:
    with ollama.Client(host=url, timeout=60) as client:
        chunks = list(
            client.chat(
                "fake-chat",
                messages=[{"role": "user", "content": f"client {number} [[slow:0.02]]"}],
                stream=True,
            )
        )
    return "".join(chunk.message.content for chunk in chunks), chunks[-1].done


def test_fifty_concurrent_streams_each_get_their_own_answer(proxy, backend) -> None:
    with ThreadPoolExecutor(STREAMS) as pool:
        results = list(pool.map(lambda n: _stream(proxy.url, n), range(STREAMS)))
    for number, (text, done) in enumerate(results):
        assert text == f"echo: client {number} [[slow:0.02]]"
        assert done
    finished = [event for event in backend.events if event["event"] == "stream_done"]
    assert len(finished) == STREAMS
