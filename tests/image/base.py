"""A stand-in for python:3.12-slim where no registry is reachable: Debian bookworm with python3.

debootstrap builds the tree (about 90 s, once: the tarball is cached), trimmed as the slim
images are (no docs, man pages, locales or apt lists), and buildah stores it as an image. The
tag carries a digest of the recipe, so a changed recipe builds a new base.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

SUITE = "bookworm"
# What python:3.12-slim has that the image relies on: an interpreter, venv (ensurepip) for the
# build stage, and CA certificates for HTTPS backends.
PACKAGES = ("python3", "python3-venv", "ca-certificates")
MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
CACHE = Path(os.environ.get("IMAGE_TEST_CACHE", Path.home() / ".cache" / "ollama-proxy-image"))
# Emptied, not removed, as the slim images do: apt still finds its directories.
TRIMMED = ("usr/share/doc", "usr/share/man", "usr/share/locale", "var/lib/apt/lists",
           "var/cache/apt/archives")  # fmt: skip
RECIPE = hashlib.sha256(f"{SUITE} {PACKAGES} {TRIMMED}".encode()).hexdigest()[:12]
TAG = f"localhost/ollama-proxy-base:{SUITE}-{RECIPE}"


def run(*argv: str, quiet: bool = False) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stderr}")
    if not quiet and result.stderr.strip():
        print(result.stderr.strip())
    return result.stdout.strip()


def image_exists(name: str) -> bool:
    found = subprocess.run(
        ["buildah", "inspect", "--type", "image", name], capture_output=True, check=False
    )
    return found.returncode == 0


def _rootfs_tarball() -> Path:
    tarball = CACHE / f"{SUITE}-{RECIPE}.tar"
    if tarball.exists():
        return tarball
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as work:
        rootfs = Path(work) / "rootfs"
        log = CACHE / "debootstrap.log"
        print(f"debootstrap {SUITE} with {', '.join(PACKAGES)} (log: {log})", flush=True)
        with log.open("w") as out:
            done = subprocess.run(
                ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
                 SUITE, str(rootfs), MIRROR],
                stdout=out, stderr=subprocess.STDOUT, check=False,
            )  # fmt: skip
        if done.returncode:
            raise RuntimeError(f"debootstrap failed; the end of {log}:\n{log.read_text()[-3000:]}")
        for relative in TRIMMED:
            for entry in (rootfs / relative).iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
        partial = tarball.with_suffix(".partial")
        run("tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), ".")
        partial.rename(tarball)  # complete, or absent: never half a tarball
    return tarball


def ensure() -> str:
    """The stand-in base's tag, building and importing it first if needed."""
    if image_exists(TAG):
        return TAG
    tarball = _rootfs_tarball()
    container = run("buildah", "from", "scratch")
    try:
        run("buildah", "add", "--quiet", container, str(tarball), "/")  # unpacks the tarball
        run("buildah", "config", "--env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
            "/sbin:/bin", "--cmd", "python3", container)  # fmt: skip
        run("buildah", "commit", "--quiet", container, TAG)
    finally:
        run("buildah", "rm", container, quiet=True)
    return TAG
