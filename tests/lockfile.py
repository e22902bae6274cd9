"""Reads the hash-pinned locks `make lock` writes (requirements*.lock, pip's requirements format).

Shared by the lock tests and `make image-test`, which compares what the image holds with the lock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import Marker
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"

_PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+)(?:\s*;\s*(?P<marker>.+))?$"
)


@dataclass(frozen=True)
class Pin:
    name: str  # canonical: lower case, runs of "-_." as "-"
    version: str
    marker: Marker | None
    hashes: tuple[str, ...]

    def applies_to(self, environment: dict[str, str]) -> bool:
        return self.marker is None or self.marker.evaluate(environment)

    def requirement_lines(self) -> str:
        """The pin as pip reads it, hashes included."""
        hashes = "".join(f" \\\n    --hash={digest}" for digest in self.hashes)
        return f"{self.name}=={self.version}{hashes}\n"


def read_lock(path: Path) -> dict[str, Pin]:
    """Every pin of a lock by canonical name. Continuation lines are joined and comments dropped,
    as pip does; anything that is not a hashed `name==version` pin is an error."""
    text = re.sub(r"\\\n", " ", path.read_text())
    pins: dict[str, Pin] = {}
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        requirement, *options = re.split(r"\s+--", line)
        match = _PIN.match(requirement.strip())
        if not match:
            raise ValueError(f"{path.name}: not an exact pin: {requirement!r}")
        hashes = tuple(opt.removeprefix("hash=") for opt in options if opt.startswith("hash="))
        if not hashes or len(hashes) != len(options):
            raise ValueError(f"{path.name}: {requirement!r} must carry hashes and nothing else")
        marker = match["marker"]
        name = canonicalize_name(match["name"])
        pins[name] = Pin(name, match["version"], Marker(marker) if marker else None, hashes)
    return pins
