"""One exchange's metrics and log fields, captured in the view for code that runs after it.

A streamed body is generated after the view has returned and the request context is gone, so
everything a stream needs to report (route, model label, request ID, arrival time, the environ
the access line reads) is taken here, in the view, and the generator calls the methods below.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import g, request

from . import metrics
from .logconfig import annotate
from .outcomes import Outcome

log = logging.getLogger(__name__)

# One line per stream: routine when it completed, worth a look otherwise.
_END_LEVELS = {Outcome.COMPLETED: logging.DEBUG, Outcome.CLIENT_DISCONNECT: logging.INFO}


class Exchange:
    __slots__ = ("_environ", "endpoint", "model", "request_id", "started", "watch")

    def __init__(self, backend_model: str | None) -> None:
        """`backend_model`: the id the catalogue resolved (None when the body is not parsed)."""
        rule = request.url_rule
        self.endpoint = rule.rule if rule is not None else request.path
        if backend_model:
            self.model = metrics.model_label(backend_model)
        else:
            self.model = metrics.UNKNOWN_MODEL
        self.request_id: str | None = g.get("request_id")
        self.started: float = g.get("request_started") or time.perf_counter()
        self._environ = request.environ
        self.watch = metrics.StreamWatch(self.endpoint, self.model, self.started)
        if backend_model:
            annotate(self._environ, model=backend_model)

    def tokens(self, usage: dict[str, Any] | None, pieces: int = 0) -> tuple[int, int]:
        """Counts the tokens of the answer and puts them on the access line."""
        prompt, completion = metrics.record_tokens(self.endpoint, self.model, usage, pieces)
        annotate(self._environ, prompt_tokens=prompt, completion_tokens=completion)
        return prompt, completion

    def stream_started(self) -> None:
        self.watch.open()

    def first_chunk(self) -> None:
        self.watch.first_chunk()

    def stream_ended(
        self,
        outcome: Outcome,
        usage: dict[str, Any] | None = None,
        pieces: int = 0,
        error: str | None = None,
        *,
        count_tokens: bool = True,
    ) -> None:
        duration = self.watch.close(outcome)
        fields: dict[str, Any] = {
            "request_id": self.request_id,
            "endpoint": self.endpoint,
            "model": self.model,
            "outcome": outcome.value,
            "duration_ms": round(duration * 1000, 3),
        }
        if self.watch.first is not None:
            fields["ttft_ms"] = round((self.watch.first - self.started) * 1000, 3)
        if count_tokens:
            fields["prompt_tokens"], fields["completion_tokens"] = self.tokens(usage, pieces)
        if error is not None:
            fields["error"] = error
        level = _END_LEVELS.get(outcome, logging.WARNING)
        log.log(level, "stream ended: %s", error or outcome, extra=fields)
