"""Request IDs: a client's well-formed ID is kept, anything else is replaced."""

from __future__ import annotations

import re
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.requestid import accept, upstream_id

VALID = re.compile(r"[A-Za-z0-9._-]{1,128}")


@pytest.mark.parametrize("value", ["a", "0f8fad5b-d9cb-469f-a165-70867728950e", "x" * 128, "a.b_c"])
def test_a_well_formed_id_is_kept(value: str) -> None:
    assert accept(value) == value


@pytest.mark.parametrize(
    "value", [None, "", "x" * 129, "has space", "line\nbreak", 'quote"', "ünï", "a/b"]
)
def test_anything_else_is_replaced_by_a_fresh_id(value: str | None) -> None:
    replaced = accept(value)
    assert re.fullmatch(r"[0-9a-f]{32}", replaced)
    assert replaced != accept(value)


@given(st.text(max_size=200))
def test_whatever_arrives_the_id_is_safe_for_logs_and_headers(value: str) -> None:
    assert VALID.fullmatch(accept(value))


def test_each_backend_call_gets_its_own_id_with_the_request_id_first() -> None:
    ids = {upstream_id("rid") for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"rid-[0-9a-f]{8}", value) for value in ids)


def test_backends_that_take_only_uuids_get_a_fresh_uuid4_per_call() -> None:
    # llama-cpp-python's middleware rejects any other X-Request-ID with an empty 400.
    ids = {upstream_id("trace-42", uuid_only=True) for _ in range(100)}
    assert len(ids) == 100
    for value in ids:
        assert uuid.UUID(value).version == 4
        assert str(uuid.UUID(value)) == value
