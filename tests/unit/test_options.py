"""Ollama `options` validation and their translation into OpenAI sampling fields."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from marshmallow import ValidationError

from app.flavours import FLAVOURS, flavour
from app.translate.ollama import options as options_module
from app.translate.ollama.options import MAX_STOP_SEQUENCES, parse_options, sampling_params


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, {}),
        ({}, {}),
        ({"temperature": 0.2, "top_p": 1, "top_k": 40}, None),
        ({"num_predict": 128.0}, {"num_predict": 128}),
        ({"seed": -1, "num_predict": -2}, None),
        ({"use_mmap": False, "numa": True}, None),
        ({"presence_penalty": -2, "frequency_penalty": 2}, None),
        ({"temperature": None, "stop": None}, {}),
        ({"not_an_option": "x", "mirostat": 0}, {"mirostat": 0}),
        ({"stop": "\n\n"}, {"stop": ["\n\n"]}),
        ({"stop": ["</s>", "", "User:"]}, {"stop": ["</s>", "User:"]}),
        ({"stop": []}, {"stop": []}),
    ],
)
def test_parse_options_accepts_what_ollama_accepts(raw: Any, expected: dict[str, Any]) -> None:
    parsed = parse_options(raw)
    assert parsed == (raw if expected is None else expected)
    assert all(type(parsed[key]) is int for key in ("num_predict", "top_k") if key in parsed)


def test_whole_number_floats_become_ints_for_integer_options() -> None:
    assert parse_options({"num_predict": 128.0, "seed": 7.0}) == {"num_predict": 128, "seed": 7}
    assert type(parse_options({"num_predict": 128.0})["num_predict"]) is int


def test_fractional_numbers_are_truncated_for_integer_options() -> None:
    # Go's decoder accepts JSON numbers for int fields, truncated.
    assert parse_options({"num_predict": 100.7, "top_k": 40.2}) == {"num_predict": 100, "top_k": 40}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([1, 2], "must be an object"),
        ("temperature=1", "must be an object"),
        ({"temperature": "hot"}, 'option "temperature" must be of type number'),
        ({"temperature": True}, 'option "temperature" must be of type number'),
        ({"top_k": "40"}, 'option "top_k" must be of type integer'),
        ({"seed": False}, 'option "seed" must be of type integer'),
        ({"num_predict": [1]}, 'option "num_predict" must be of type integer'),
        ({"temperature": float("inf")}, 'option "temperature" must be of type number'),
        ({"use_mmap": "yes"}, 'option "use_mmap" must be of type boolean'),
        ({"use_mmap": 1}, 'option "use_mmap" must be of type boolean'),
        ({"temperature": -0.1}, 'option "temperature" must be between 0 and 100'),
        ({"top_p": 1.5}, 'option "top_p" must be between 0 and 1'),
        ({"min_p": -1}, 'option "min_p" must be between 0 and 1'),
        ({"presence_penalty": 3}, 'option "presence_penalty" must be between -2 and 2'),
        ({"frequency_penalty": -2.5}, 'option "frequency_penalty" must be between -2 and 2'),
        ({"num_predict": -3}, 'option "num_predict" must be between -2 and'),
        ({"top_k": -2}, 'option "top_k" must be between -1 and'),
        ({"num_ctx": -1}, 'option "num_ctx" must be between 0 and'),
        ({"stop": [1, 2]}, 'option "stop" must be of type array of strings'),
        ({"stop": 5}, 'option "stop" must be of type array of strings'),
        ({"stop": {"a": 1}}, 'option "stop" must be of type array of strings'),
        ({"stop": ["x"] * (MAX_STOP_SEQUENCES + 1)}, f"at most {MAX_STOP_SEQUENCES} sequences"),
    ],
)
def test_parse_options_rejects_with_a_message_naming_the_option(raw: Any, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_options(raw)
    assert message in str(caught.value)


def test_every_stop_sequence_up_to_the_limit_is_kept() -> None:
    stops = [f"s{n}" for n in range(MAX_STOP_SEQUENCES)]
    assert parse_options({"stop": stops}) == {"stop": stops}


STANDARD = {"temperature": 0.7, "top_p": 0.9, "presence_penalty": 0.5, "frequency_penalty": 0.1}


@pytest.mark.parametrize("name", FLAVOURS)
def test_standard_options_are_sent_to_every_flavour(name: str) -> None:
    assert sampling_params({**STANDARD, "seed": 42, "stop": ["END"]}, flavour(name)) == {
        **STANDARD,
        "seed": 42,
        "stop": ["END"],
    }


@pytest.mark.parametrize(
    ("name", "completions", "field"),
    [
        ("generic", False, "max_tokens"),
        ("vllm", False, "max_tokens"),
        ("llama-cpp-python", False, "max_tokens"),
        ("openrouter", False, "max_tokens"),
        ("openai", False, "max_completion_tokens"),
        ("openai", True, "max_tokens"),
        ("vllm", True, "max_tokens"),
    ],
)
def test_num_predict_becomes_the_flavours_token_limit(
    name: str, completions: bool, field: str
) -> None:
    assert sampling_params({"num_predict": 256}, flavour(name), completions=completions) == {
        field: 256
    }


@pytest.mark.parametrize("name", FLAVOURS)
@pytest.mark.parametrize("num_predict", [0, -1, -2])
def test_unlimited_num_predict_is_never_forwarded(name: str, num_predict: int) -> None:
    assert sampling_params({"num_predict": num_predict}, flavour(name)) == {}
    assert sampling_params({"num_predict": num_predict}, flavour(name), completions=True) == {}


@pytest.mark.parametrize(("seed", "expected"), [(-1, {}), (0, {"seed": 0}), (7, {"seed": 7})])
def test_seed_minus_one_means_random_and_is_omitted(seed: int, expected: dict[str, int]) -> None:
    assert sampling_params({"seed": seed}, flavour("vllm")) == expected


def test_empty_stop_list_is_omitted() -> None:
    assert sampling_params({"stop": []}, flavour("generic")) == {}


EXTRAS = {
    "top_k": 40,
    "min_p": 0.05,
    "typical_p": 0.9,
    "repeat_penalty": 1.1,
    "repeat_last_n": 64,
    "num_keep": 4,
    "mirostat": 2,
    "mirostat_tau": 5.0,
    "mirostat_eta": 0.1,
}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("generic", {}),
        ("openai", {}),
        ("vllm", {"top_k": 40, "min_p": 0.05, "repetition_penalty": 1.1}),
        ("openrouter", {"top_k": 40, "min_p": 0.05, "repetition_penalty": 1.1}),
        (
            "llama-cpp-python",
            {
                "top_k": 40,
                "min_p": 0.05,
                "typical_p": 0.9,
                "repeat_penalty": 1.1,
                "repeat_last_n": 64,
                "n_keep": 4,
                "mirostat": 2,
                "mirostat_tau": 5.0,
                "mirostat_eta": 0.1,
            },
        ),
    ],
)
def test_extra_samplers_are_gated_and_renamed_per_flavour(
    name: str, expected: dict[str, Any]
) -> None:
    assert sampling_params(EXTRAS, flavour(name)) == expected


LOAD_TIME = {
    "num_ctx": 8192,
    "num_batch": 512,
    "num_gpu": 99,
    "main_gpu": 0,
    "num_thread": 8,
    "draft_num_predict": 4,
    "num_gqa": 8,
    "use_mmap": True,
    "numa": False,
    "low_vram": False,
    "f16_kv": True,
    "logits_all": False,
    "vocab_only": False,
    "use_mlock": False,
    "embedding_only": False,
    "penalize_newline": True,
    "tfs_z": 1.0,
}


@pytest.mark.parametrize("name", FLAVOURS)
@pytest.mark.parametrize("completions", [False, True])
def test_load_time_and_removed_options_are_never_sent(name: str, completions: bool) -> None:
    parsed = parse_options(LOAD_TIME)
    assert parsed == LOAD_TIME
    assert sampling_params(parsed, flavour(name), completions=completions) == {}


def test_a_dropped_sampler_is_logged_once_per_flavour(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(options_module, "_warned", set())
    with caplog.at_level(logging.INFO, logger="app.translate.ollama.options"):
        sampling_params({"top_k": 40}, flavour("openai"))
        sampling_params({"top_k": 20}, flavour("openai"))
        sampling_params({"top_k": 20}, flavour("generic"))
        sampling_params({"num_ctx": 4096}, flavour("generic"))
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "option top_k is not sent to a openai backend (set BACKEND_FLAVOUR to forward it)",
        "option top_k is not sent to a generic backend (set BACKEND_FLAVOUR to forward it)",
    ]
