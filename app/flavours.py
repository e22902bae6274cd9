"""Backend dialects ("flavours"): everything that differs between OpenAI-compatible servers,
in one frozen object per dialect. Translators consult the object; none of them tests a name.

A new dialect is one entry in `FLAVOURS`. Each rule says what the server does with the
standard form, so the next engineer can tell whether it still holds; docs/backends/ has the
wire evidence for the servers tried.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any


class ThinkStyle(StrEnum):
    """How a backend is told whether (and how hard) the model should think."""

    NONE = "none"  # nothing is sent: the model's default applies
    CHAT_TEMPLATE_KWARGS = "chat_template_kwargs"  # enable_thinking for the chat template
    REASONING_EFFORT = "reasoning_effort"  # OpenAI's top-level field
    OPENROUTER = "openrouter"  # OpenRouter's `reasoning` object


class RequestIdForm(StrEnum):
    TAGGED = "tagged"  # "<the request's id>-<8 hex>": greppable across proxy and backend logs
    UUID = "uuid"  # a random UUID: servers that validate the header accept nothing else


class SchemaForm(StrEnum):
    """How a JSON schema for structured output is sent."""

    OPENAI = "openai"  # {"type": "json_schema", "json_schema": {"name", "schema"}}
    SCHEMA_FIELD = "schema_field"  # {"type": "json_object", "schema": ...}, llama.cpp's form


_NO_EXTRAS: Mapping[str, str] = MappingProxyType({})


# eq=False: a flavour is one registered object, compared (and hashed) by identity.
@dataclass(frozen=True, eq=False)
class Flavour:
    name: str
    # Ollama option -> request field, for the options beyond the OpenAI standard it accepts.
    option_extras: Mapping[str, str] = field(default_factory=lambda: _NO_EXTRAS)
    think_style: ThinkStyle = ThinkStyle.NONE
    # With think: false, also send reasoning_effort "none" (llama.cpp's own switch).
    think_off_by_effort: bool = False
    # OpenAI's reasoning models reject max_tokens on chat; everyone else reads max_tokens.
    max_tokens_field: str = "max_tokens"
    # A trailing assistant message is continued (prefill) only when the server is told so.
    prefill_flags: bool = False
    # Chat templates that read a tool result's function name from `name` on the message.
    tool_result_name: bool = False
    # False where a streamed request with tools fails: the proxy asks for the whole answer
    # and replays it as a stream.
    streams_tool_calls: bool = True
    # False where /v1/completions has no fill-in-the-middle: Ollama's "does not support insert".
    suffix: bool = True
    # False where the image loader has no WebP decoder.
    webp: bool = True
    # False where a list input is embedded wrongly: one request per input instead.
    embeds_lists: bool = True
    # vLLM truncates an over-long embedding input to the model's window when asked.
    embed_truncation_field: bool = False
    # Every server tried accepts a UUID; llama-cpp-python accepts nothing else.
    request_id: RequestIdForm = RequestIdForm.UUID
    # Servers that ignore tools unless tool_choice is given explicitly.
    explicit_tool_choice: bool = False
    # Servers that reject an assistant message whose content is null (tool calls only).
    null_content: bool = True
    # Servers that return no logprobs unless at least one alternative is asked for.
    logprobs_need_top: bool = False
    schema_form: SchemaForm = SchemaForm.OPENAI
    # The client APIs the server serves itself and gets passed through instead of translated:
    # "messages" (Anthropic's /v1/messages), "responses" (OpenAI's /v1/responses).
    native_apis: frozenset[str] = frozenset()

    def adapt_chat_body(self, body: dict[str, Any]) -> dict[str, Any]:
        """The dialect's fixes to a standard chat completions body (in place)."""
        if self.explicit_tool_choice and "tools" in body:
            body.setdefault("tool_choice", "auto")
        if not self.null_content:
            for message in body["messages"]:
                if message.get("content") is None:
                    message["content"] = ""
        if self.logprobs_need_top and body.get("logprobs") and not body.get("top_logprobs"):
            body["top_logprobs"] = 1
        return body


_SAMPLERS = MappingProxyType(
    {"top_k": "top_k", "min_p": "min_p", "repeat_penalty": "repetition_penalty"}
)
_LLAMA_SAMPLERS = MappingProxyType(
    {
        "top_k": "top_k",
        "min_p": "min_p",
        "typical_p": "typical_p",
        "repeat_penalty": "repeat_penalty",
        "repeat_last_n": "repeat_last_n",
        "num_keep": "n_keep",
        "mirostat": "mirostat",
        "mirostat_tau": "mirostat_tau",
        "mirostat_eta": "mirostat_eta",
    }
)

# llama.cpp's own C++ server.
_LLAMA_SERVER = Flavour(
    "llama-server",
    option_extras=_LLAMA_SAMPLERS,
    think_style=ThinkStyle.CHAT_TEMPLATE_KWARGS,
    think_off_by_effort=True,
    tool_result_name=True,
    # It accepts `suffix` on /v1/completions and ignores it.
    suffix=False,
    # Its image loader (stb_image) has no WebP decoder.
    webp=False,
    request_id=RequestIdForm.TAGGED,  # ignored, so ours
)

FLAVOURS: Mapping[str, Flavour] = MappingProxyType(
    {
        flavour.name: flavour
        for flavour in (
            # Only what every server tried accepts: the standard OpenAI request, a UUID request
            # ID, and "" rather than null content beside tool calls.
            Flavour("generic", null_content=False),
            Flavour(
                "vllm",
                option_extras=_SAMPLERS,
                think_style=ThinkStyle.CHAT_TEMPLATE_KWARGS,
                prefill_flags=True,
                tool_result_name=True,
                # vLLM has no fill-in-the-middle: `suffix` is rejected or silently ignored.
                suffix=False,
                embed_truncation_field=True,
                # vLLM takes any string as its internal request id: ours, greppable.
                request_id=RequestIdForm.TAGGED,
            ),
            _LLAMA_SERVER,
            # The same, with Anthropic Messages and Responses passed to its own routes.
            replace(
                _LLAMA_SERVER,
                name="llama-server-native",
                native_apis=frozenset({"messages", "responses"}),
            ),
            Flavour(
                "llama-cpp-python",
                option_extras=_LLAMA_SAMPLERS,
                think_style=ThinkStyle.CHAT_TEMPLATE_KWARGS,
                think_off_by_effort=True,
                tool_result_name=True,
                # A streamed request with tools gets an empty 200 ("Automatic streaming tool
                # choice is not supported").
                streams_tool_calls=False,
                # stb_image, its image loader, has no WebP decoder.
                webp=False,
                # A list input shifts every vector after the first by a token count.
                embeds_lists=False,
                explicit_tool_choice=True,
                null_content=False,
                logprobs_need_top=True,
                # OpenAI's json_schema form is a 500; its own schema field works.
                schema_form=SchemaForm.SCHEMA_FIELD,
            ),
            Flavour(
                "openai",
                think_style=ThinkStyle.REASONING_EFFORT,
                max_tokens_field="max_completion_tokens",
            ),
            Flavour("openrouter", option_extras=_SAMPLERS, think_style=ThinkStyle.OPENROUTER),
        )
    }
)
# Names accepted in BACKEND_FLAVOUR for compatibility: `llamacpp` described llama-cpp-python
# before llama.cpp's own server had a dialect.
ALIASES: Mapping[str, str] = MappingProxyType({"llamacpp": "llama-cpp-python"})
AUTO = "auto"


def flavour(name: str) -> Flavour:
    """The registered flavour of that name or alias (configuration validated it at start)."""
    return FLAVOURS[ALIASES.get(name, name)]
