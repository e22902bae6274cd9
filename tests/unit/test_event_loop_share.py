"""The steps a large request runs in a thread give the event loop its turn: the C parser and
encoder hold the GIL for a whole call, so a large body is parsed with a Python callback per
object and number and encoded one list item at a time. Both must give exactly what the one-call
versions give."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from app.body import _decode, _loads
from app.request_json import dumps, dumps_in_pieces

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)  # fmt: skip


@given(st.dictionaries(st.text(), _json, max_size=6))
def test_a_body_encoded_in_pieces_is_the_body_encoded_at_once(payload: dict[str, Any]) -> None:
    assert dumps_in_pieces(payload) == dumps(payload)


@given(st.dictionaries(st.text(), _json, max_size=6))
def test_a_large_body_parses_to_what_a_small_one_does(payload: dict[str, Any]) -> None:
    text = json.dumps(payload)
    assert _loads(text, large=True) == _loads(text, large=False) == payload


def test_a_body_decoded_in_slices_is_the_body_decoded_at_once() -> None:
    # Multi-byte characters straddle the 1 MiB slice boundaries.
    raw = ("é€😀a" * 400_000).encode()
    assert _decode(raw) == raw.decode()
