"""How a streamed answer ended: the closed set the metrics, the logs and the relay share."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    COMPLETED = "completed"
    CLIENT_DISCONNECT = "client_disconnect"  # the client hung up
    BACKEND_ERROR = "backend_error"  # the backend broke off or reported an error mid-stream
    SHUTDOWN = "shutdown"  # cut at the end of the graceful timeout
    ERROR = "error"  # a bug in the proxy
