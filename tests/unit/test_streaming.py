"""Bytes on the wire: the backend SSE reader and the NDJSON line encoder."""

from __future__ import annotations

import gzip
import io
import json
import re
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
import requests
from urllib3 import HTTPResponse

from app import clock, wire
from app.clock import now_rfc3339
from app.stream import iter_raw
from app.wire import DONE, SSEProtocolError, iter_sse_batches, ndjson


def iter_sse_data(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The payloads one at a time, whatever read brought them."""
    for batch in iter_sse_batches(chunks):
        yield from (payload for payload in batch if payload is not DONE)


ROLE = b'{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}'
TEXT = '{"choices":[{"index":0,"delta":{"content":"caf\u00e9 \u2028 \U0001f600 \u65e5\u672c"}}]}'
UNICODE = TEXT.encode()  # raw UTF-8, with U+2028 and 4-byte characters inside the JSON
FINISH = b'{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}'
USAGE = b'{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}'
EXPECTED = [ROLE, UNICODE, FINISH, USAGE]

# A vLLM-like stream with everything a spec-following reader must tolerate.
STREAM = (
    b": ping - 2026-08-22 10:00:00\n\n"
    b"data: " + ROLE + b"\n\n"
    b"event: message\nid: 7\nretry: 1000\ndata: " + UNICODE + b"\n\n"
    b"\n\n"
    b": OPENROUTER PROCESSING\r\n\r\n"
    b"data: " + FINISH + b"\r\n\r\n"
    b"data:" + USAGE + b"\n\n"
    b"data: [DONE]\n\n"
    b'data: {"after":"done"}\n\n'
)


def events(*chunks: bytes) -> list[bytes]:
    return list(iter_sse_data(iter(chunks)))


def test_whole_stream_in_one_read() -> None:
    assert events(STREAM) == EXPECTED


def test_every_split_point_gives_the_same_events() -> None:
    for cut in range(len(STREAM) + 1):
        assert events(STREAM[:cut], STREAM[cut:]) == EXPECTED, cut


def test_every_pair_of_split_points_gives_the_same_events() -> None:
    step = 7  # every byte position as a first cut, a stride of second cuts after it
    for first in range(len(STREAM)):
        for second in range(first, len(STREAM) + 1, step):
            chunks = (STREAM[:first], STREAM[first:second], STREAM[second:])
            assert events(*chunks) == EXPECTED, (first, second)


def test_one_byte_reads() -> None:
    assert events(*(STREAM[i : i + 1] for i in range(len(STREAM)))) == EXPECTED


def test_multibyte_utf8_and_u2028_survive_any_split() -> None:
    payload = events(STREAM)[1]
    decoded = json.loads(payload)["choices"][0]["delta"]["content"]
    assert decoded == "café \u2028 😀 日本"


def test_crlf_line_ends() -> None:
    stream = STREAM.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert events(stream) == EXPECTED


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert events(b'data: {"a":\ndata: 1}\n\n') == [b'{"a":\n1}']
    assert events(b"data: one\r\ndata:two\r\n\r\n") == [b"one\ntwo"]


def test_only_one_space_after_the_colon_is_removed() -> None:
    assert events(b"data:  padded\n\n") == [b" padded"]


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        (b"data: " + FINISH, [FINISH]),
        (b"data: " + FINISH + b"\n", [FINISH]),
        (b"data: " + ROLE + b"\n\ndata: " + FINISH, [ROLE, FINISH]),
        (b"data: [DONE]", []),
        (b"data: [DONE]\n", []),
        (b"data: " + ROLE + b"\n\ndata: [DONE]", [ROLE]),
        (b"", []),
        (b": just a comment\n\n\n", []),
        (b"event: ping\n\n", []),
    ],
)
def test_a_stream_without_a_final_blank_line(stream: bytes, expected: list[bytes]) -> None:
    assert events(stream) == expected


def test_nothing_after_done_is_read() -> None:
    def chunks() -> Iterator[bytes]:
        yield b"data: " + ROLE + b"\n\ndata: [DONE]\n\n"
        raise AssertionError("read past [DONE]")

    assert list(iter_sse_data(chunks())) == [ROLE]


def test_an_endless_line_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wire, "MAX_LINE_BYTES", 1024)
    assert events(b"data: " + b"x" * 1000 + b"\n\n") == [b"x" * 1000]
    with pytest.raises(SSEProtocolError, match="over 16 MiB"):
        events(b"data: " + b"x" * 600, b"x" * 600)


def test_a_long_line_over_many_reads_costs_linear_time() -> None:
    # A line that many reads deliver (a 15 MiB event in 64 KiB reads) was joined again at every
    # read: 1.4 s of the event loop before the line ended (16 MiB: 1.6 s), now 0.04 s.
    reads = [b"data: ", *[b"x" * 65536] * 240, b"\n\n"]
    started = time.process_time()
    assert [len(payload) for batch in iter_sse_batches(reads) for payload in batch] == [240 * 65536]
    assert time.process_time() - started < 0.4


def backend_response(body: bytes, encoding: str | None = None) -> requests.Response:
    headers = {"Content-Encoding": encoding} if encoding else {}
    response = requests.Response()
    response.raw = HTTPResponse(
        body=io.BytesIO(body), headers=headers, preload_content=False, decode_content=False
    )
    return response


def test_iter_raw_relays_the_body_and_feeds_the_sse_reader() -> None:
    chunks = list(iter_raw(backend_response(STREAM)))
    assert b"".join(chunks) == STREAM
    assert list(iter_sse_data(iter_raw(backend_response(STREAM)))) == EXPECTED


def test_iter_raw_decodes_content_encoding_unless_relaying_untouched() -> None:
    packed = gzip.compress(STREAM)
    assert b"".join(iter_raw(backend_response(packed, "gzip"))) == STREAM
    assert b"".join(iter_raw(backend_response(packed, "gzip"), decode=False)) == packed


def test_ndjson_is_one_compact_ascii_line() -> None:
    chunk = {
        "model": "qwen3",
        "message": {"role": "assistant", "content": "a\u2028b\u2029c\u0085d\nE café 😀"},
        "done": False,
    }
    line = ndjson(chunk)
    assert line.endswith(b"}\n")
    assert line.count(b"\n") == 1
    assert line.isascii()
    assert b"\\u2028" in line
    assert b"\\u2029" in line
    assert b", " not in line
    assert b": " not in line
    assert len(line.decode().splitlines()) == 1  # how the Python SDK splits lines
    assert json.loads(line) == chunk


STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


def test_now_rfc3339_is_utc_with_microseconds() -> None:
    before = datetime.now(UTC)
    stamp = now_rfc3339()
    after = datetime.now(UTC)
    assert STAMP.match(stamp)
    parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert before.replace(microsecond=0) <= parsed <= after


def test_now_rfc3339_formats_each_second_correctly(monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = iter([1700000000.25, 1700000000.5, 1700000001.0, 1700000061.999999])
    fake = SimpleNamespace(time=lambda: next(ticks), strftime=time.strftime, gmtime=time.gmtime)
    monkeypatch.setattr(clock, "time", fake)
    assert [now_rfc3339() for _ in range(4)] == [
        "2023-11-14T22:13:20.250000Z",
        "2023-11-14T22:13:20.500000Z",
        "2023-11-14T22:13:21.000000Z",
        "2023-11-14T22:14:21.999999Z",
    ]


def test_events_are_batched_by_the_read_that_completed_them() -> None:
    one = b'data: {"a":1}\n\ndata: {"a":2}\n\ndata: {"a'
    two = b'":3}\n\ndata: [DONE]\n\n'
    assert list(iter_sse_batches([one, two])) == [[b'{"a":1}', b'{"a":2}'], [b'{"a":3}', DONE]]
    assert list(iter_sse_batches([b"data: [DONE]\n\n", b"data: {}\n\n"])) == [[DONE]]
