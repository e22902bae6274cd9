"""Every registered flavour: configurable, documented, and able to translate every request."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import Settings
from app.flavours import FLAVOURS, Flavour, SchemaForm
from app.ollama.schemas import chat_schema
from app.translate.ollama.embeddings import embeddings_body
from app.translate.ollama.to_backend import Target, chat_body
from app.validation import load
from tests.samples import PNG, WEATHER_TOOL

ROOT = Path(__file__).resolve().parents[2]
EVERYTHING = {
    "model": "m",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather?", "images": [PNG]},
        {"role": "assistant", "tool_calls": [{"function": {"name": "get_weather"}}]},
        {"role": "tool", "content": "22", "tool_name": "get_weather"},
    ],
    "tools": [WEATHER_TOOL],
    "format": {"type": "object"},
    "think": "high",
    "logprobs": True,
    "options": {"num_predict": 8, "top_k": 5, "temperature": 0.1},
}


@pytest.fixture(params=sorted(FLAVOURS), ids=str)
def flavour(request: pytest.FixtureRequest) -> Flavour:
    return FLAVOURS[request.param]


def test_every_flavour_is_a_valid_setting_and_in_the_readme(flavour: Flavour) -> None:
    settings = Settings.from_env({"BACKEND_FLAVOUR": flavour.name})
    assert settings.backend_flavour == flavour.name
    assert f"`{flavour.name}`" in (ROOT / "README.md").read_text()


def test_every_flavour_translates_a_request_using_every_feature(flavour: Flavour) -> None:
    request = load(chat_schema, EVERYTHING)
    body = chat_body(request, Target("m", flavour, flavour.think_style), stream=True)
    assert body["messages"][3]["tool_call_id"] == body["messages"][2]["tool_calls"][0]["id"]
    assert body["stream_options"] == {"include_usage": True}
    assert body[flavour.max_tokens_field] == 8
    assert ("top_k" in body) == ("top_k" in flavour.option_extras)
    if flavour.schema_form is SchemaForm.OPENAI:
        assert body["response_format"]["type"] == "json_schema"
    else:
        assert body["response_format"] == {"type": "json_object", "schema": {"type": "object"}}
    if not flavour.null_content:
        assert all(message["content"] is not None for message in body["messages"])
    assert embeddings_body("e", ["x"], flavour=flavour, truncate=True)["input"] == ["x"]
