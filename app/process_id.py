"""This process's id, kept rather than asked for.

`os.getpid()` is a system call. prometheus_client's multiprocess mode asks for the id before
every value it writes (about ten per request) and `logging` for every record it makes, so the
id is kept here, and read again only in a child after a fork (gunicorn forks its workers from
the master, which imported this first).
"""

from __future__ import annotations

import os

_pid = os.getpid()


def _forked() -> None:
    global _pid  # noqa: PLW0603  the one process-wide fact this module keeps
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


def pid() -> int:
    return _pid
