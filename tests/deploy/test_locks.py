"""The locks are what `make run`, `make test`, the image and CI install: they must match the
ranges people edit (requirements*.txt), carry a hash for every file, and agree with each other."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.lockfile import DEV_LOCK, ROOT, RUNTIME_LOCK, read_lock


def requirements(path: Path) -> list[Requirement]:
    """The requirements of a hand-edited file, following `-r` as pip does."""
    found = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("-r"):
            found += requirements(path.parent / line[2:].strip())
        elif line:
            found.append(Requirement(line))
    return found


@pytest.mark.parametrize(
    ("source", "lock"), [("requirements.txt", RUNTIME_LOCK), ("requirements-dev.txt", DEV_LOCK)]
)
def test_the_lock_satisfies_every_range_people_wrote(source: str, lock: Path) -> None:
    pins = read_lock(lock)
    for requirement in requirements(ROOT / source):
        pin = pins.get(canonicalize_name(requirement.name))
        assert pin, f"{requirement.name} ({source}) is missing from {lock.name}: run `make lock`"
        assert requirement.specifier.contains(pin.version, prereleases=True), (
            f"{source} asks for {requirement}, {lock.name} pins {pin.version}: run `make lock`"
        )


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, DEV_LOCK], ids=lambda p: p.name)
def test_every_pin_is_exact_and_hashed(lock: Path) -> None:
    pins = read_lock(lock)  # raises on anything that is not `name==version --hash=...`
    assert pins
    for pin in pins.values():
        assert all(h.startswith("sha256:") for h in pin.hashes), pin


def test_tests_run_on_exactly_the_versions_the_image_ships() -> None:
    runtime, dev = read_lock(RUNTIME_LOCK), read_lock(DEV_LOCK)
    differ = {
        name: (pin.version, dev[name].version if name in dev else None)
        for name, pin in runtime.items()
        if name not in dev or dev[name].version != pin.version
    }
    assert not differ, f"runtime vs dev lock: {differ}; run `make lock`"
