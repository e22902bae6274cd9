"""`make image-test`: build the image, run the proxy from it, check what a deployment relies on.

No registry is reachable here, so the base is a local stand-in (tests/image/base.py) passed as
BASE_IMAGE; IMAGE_TEST_BASE names another (python:3.12-slim where a registry answers). Then:

- the image's configuration: a numeric non-root user, a health check, the CMD;
- what it holds: exactly the runtime lock's packages in /opt/venv, no pip, no compiler;
- the proxy started with the image's own CMD (`buildah run --isolation chroot --network host`,
  loopback only) as that user, /tmp read-only and the metrics directory on tmpfs, in front of the
  fake backend: `/`, `/api/version`, a streamed chat, `/health`, `/ready`, the HEALTHCHECK
  command, the metrics port; SIGTERM stops it cleanly;
- nothing was written to the root filesystem: the container's overlay layer holds nothing but
  the mount points, so the image runs with a read-only root filesystem;
- the size it adds on top of its base (target: under 60 MB);
- a CycloneDX SBOM of the installed packages, in build/sbom.cdx.json.

Needs root, buildah and (for the stand-in base) debootstrap. Everything it starts is stopped on
the way out; the image stays in buildah's storage for a look.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
from packaging.utils import canonicalize_name

from harness.fake_backend import FakeBackend
from harness.proxy_process import free_port
from tests.image import base
from tests.lockfile import ROOT, RUNTIME_LOCK, Pin, read_lock

IMAGE = "localhost/ollama-proxy:image-test"
BUILD = ROOT / "build"
SIZE_TARGET_MB = 60
METRICS_DIR = "/run/metrics"  # a tmpfs, as the emptyDir in deploy/kubernetes/
READ_ONLY = ("/tmp", "/var/tmp")  # the usual writable places, made read-only
# Run inside the image: what is installed, and what is not.
PROBE = """
import importlib.metadata, importlib.util, json, os, shutil, subprocess, sys
from packaging.markers import default_environment
interpreter = os.path.realpath(sys.executable)  # the base's own python, behind the venv's link
base_pip = subprocess.run([interpreter, "-m", "pip", "--version"], capture_output=True)
print(json.dumps({
    "packages": {d.metadata["Name"]: d.version for d in importlib.metadata.distributions()},
    "pip": importlib.util.find_spec("pip") is not None or base_pip.returncode == 0,
    "compilers": sorted(c for c in ("cc", "gcc", "g++", "clang", "make") if shutil.which(c)),
    "environment": default_environment(),
}))
"""


class CheckFailed(Exception):
    pass


def expect(condition: bool, message: object) -> None:
    """A check's condition (not `assert`: this is a program, and -O would drop those)."""
    if not condition:
        raise CheckFailed(str(message))


class Checks:
    """Runs each check, prints its outcome at once, and remembers whether any failed."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def __call__(self, name: str, check: Callable[[], str]) -> None:
        try:
            detail = check()
        except Exception as exc:  # every failure is reported, then the next check runs
            self.failed.append(name)
            print(f"  FAIL {name}: {type(exc).__name__}: {exc}", flush=True)
        else:
            print(f"  ok   {name}: {detail}", flush=True)


def run(*argv: str) -> str:
    return base.run(*argv, quiet=True)


def inspect(kind: str, name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(run("buildah", "inspect", "--type", kind, name))
    return document


def build(base_image: str) -> None:
    # The Makefile's own build command; a PIP_CERT in the environment reaches pip as a secret.
    subprocess.run(
        ["make", "--no-print-directory", "image", "IMAGE_BUILDER=buildah",
         f"BASE_IMAGE={base_image}", f"IMAGE={IMAGE}"],
        cwd=ROOT, check=True,
    )  # fmt: skip


def layer_sizes(name: str) -> list[tuple[str, int]]:
    manifest = json.loads(inspect("image", name)["Manifest"])
    return [(layer["digest"], int(layer["size"])) for layer in manifest["layers"]]


def added_megabytes(image: str, base_image: str) -> float:
    own, under = layer_sizes(image), layer_sizes(base_image)
    expect(own[: len(under)] == under, "the image is not built on the base it was given")
    return sum(size for _, size in own[len(under) :]) / 1e6


@contextlib.contextmanager
def working_container() -> Iterator[tuple[str, Path]]:
    """A container of the image, and its writable overlay layer (what a run wrote)."""
    container = run("buildah", "from", "--quiet", "--pull=never", IMAGE)
    try:
        mountpoint = run("buildah", "mount", container)
        upper = next(
            option.removeprefix("upperdir=")
            for line in Path("/proc/mounts").read_text().splitlines()
            if line.split()[1] == mountpoint
            for option in line.split()[3].split(",")
            if option.startswith("upperdir=")
        )
        yield container, Path(upper)
    finally:
        subprocess.run(["buildah", "rm", container], capture_output=True, check=False)


def in_image(
    container: str, *argv: str, env: dict[str, str] | None = None, mounts: tuple[str, ...] = ()
) -> list[str]:
    """`buildah run` of a command in the container, on the host's network (loopback only)."""
    flags = [f"--env={k}={v}" for k, v in (env or {}).items()] + [f"--mount={m}" for m in mounts]
    return ["buildah", "run", "--isolation", "chroot", "--network", "host", *flags, container,
            "--", *argv]  # fmt: skip


def gunicorn_processes(root: int) -> list[psutil.Process]:
    """gunicorn's master and workers: the Python processes among `root`'s descendants (buildah's
    helpers above them name gunicorn on their command line too)."""
    descendants = psutil.Process(root).children(recursive=True)
    return [p for p in descendants if Path(p.cmdline()[0]).name.startswith("python")]


def wait_answering(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the proxy exited at start:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url + "/", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the proxy did not answer within 60 s:\n{log.read_text()[-3000:]}")


def check_running(checks: Checks, container: str, config: dict[str, Any], empty: Path) -> None:
    """Starts the proxy from the image, checks it over HTTP, and stops it with SIGTERM."""
    port, metrics_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"PROXY_HOST": "127.0.0.1", "PROXY_PORT": str(port), "METRICS_PORT": str(metrics_port)}
    read_only = (f"type=bind,source={empty},destination={d},ro=true" for d in READ_ONLY)
    mounts = (f"type=tmpfs,destination={METRICS_DIR},tmpfs-mode=1777", *read_only)
    log = BUILD / "image-test-proxy.log"
    with FakeBackend() as backend, log.open("wb") as out:
        env |= {"OPENAI_API_BASE_URL": backend.url, "PROMETHEUS_MULTIPROC_DIR": METRICS_DIR,
                "WEB_CONCURRENCY": "2"}  # fmt: skip
        argv = in_image(container, *config["Cmd"], env=env, mounts=mounts)
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_answering(url, process, log)
            http_checks(checks, url, f"http://127.0.0.1:{metrics_port}/metrics")
            checks("HEALTHCHECK", lambda: healthcheck(container, config, env))
            checks("the proxy's user", lambda: proxy_user(process.pid))
            checks("SIGTERM", lambda: stop(process))
        finally:
            if process.poll() is None:  # a check failed midway: nothing may outlive the test
                for leftover in psutil.Process(process.pid).children(recursive=True):
                    leftover.kill()
                process.kill()
                process.wait()


def http_checks(checks: Checks, url: str, metrics_url: str) -> None:
    def root() -> str:
        response = httpx.get(url + "/", timeout=10)
        expect(response.status_code == 200 and response.text == "Ollama is running", response.text)
        return response.text

    def version() -> str:
        body = httpx.get(url + "/api/version", timeout=10).json()
        expect(isinstance(body.get("version"), str), body)
        return json.dumps(body)

    def streamed_chat() -> str:
        text = "[[slow:0.05]] hello from the image"
        body = {"model": "fake-chat", "messages": [{"role": "user", "content": text}]}
        with httpx.stream("POST", url + "/api/chat", json=body, timeout=30) as response:
            expect(response.status_code == 200, response.read())
            lines = [json.loads(line) for line in response.iter_lines()]
        answer = "".join(line["message"]["content"] for line in lines)
        expect(lines[-1]["done"] is True and answer == f"echo: {text}", lines)
        return f"{len(lines)} NDJSON lines, done, {answer!r}"

    def probe(path: str, expected: str) -> Callable[[], str]:
        def check() -> str:
            response = httpx.get(url + path, timeout=10)
            expect(response.status_code == 200, response.text)
            expect(response.json()["status"] == expected, response.text)
            return response.text.strip()

        return check

    def metrics() -> str:
        def sampled() -> list[float]:
            lines = httpx.get(metrics_url, timeout=10).text.splitlines()
            prefix = "proxy_worker_resident_memory_bytes{"
            return [float(line.split()[-1]) for line in lines if line.startswith(prefix)]

        deadline = time.monotonic() + 20  # the sampler's first round
        while not (rss := sampled()) and time.monotonic() < deadline:
            time.sleep(0.5)
        expect(len(rss) == 2, f"{len(rss)} workers sampled")
        return "worker memory " + ", ".join(f"{value / 2**20:.1f} MiB" for value in rss)

    checks("GET /", root)
    checks("GET /api/version", version)
    checks("streamed /api/chat", streamed_chat)
    checks("GET /health", probe("/health", "ok"))
    checks("GET /ready", probe("/ready", "ready"))
    checks("metrics port", metrics)


def healthcheck(container: str, config: dict[str, Any], env: dict[str, str]) -> str:
    test = config["Healthcheck"]["Test"]
    expect(test[0] == "CMD", test)
    done = subprocess.run(in_image(container, *test[1:], env=env), capture_output=True, check=False)
    expect(done.returncode == 0, done.stderr.decode()[-500:])
    return "exit 0"


def proxy_user(root: int) -> str:
    processes = gunicorn_processes(root)
    users = {(p.uids().real, p.gids().real) for p in processes}
    expect(len(processes) == 3 and users == {(10001, 10001)}, users)
    return f"master and 2 workers as uid/gid {users.pop()}"


def stop(process: subprocess.Popen[bytes]) -> str:
    # buildah run does not pass SIGTERM on, so the signal goes where a container runtime sends
    # it: the process the image's CMD started (gunicorn's master).
    gunicorns = gunicorn_processes(process.pid)
    master = next(p for p in gunicorns if p.ppid() not in {g.pid for g in gunicorns})
    started = time.monotonic()
    master.send_signal(signal.SIGTERM)
    code = process.wait(30)
    expect(code == 0, f"exit code {code}")
    return f"exit 0 after {time.monotonic() - started:.1f} s"


def written(upper: Path) -> list[str]:
    """What a run left in the container's own layer, apart from the mount points it needed."""
    allowed = {METRICS_DIR, *READ_ONLY}
    allowed |= {str(Path(p).parent) for p in allowed}
    return sorted(
        f"/{path.relative_to(upper)}" for path in upper.rglob("*")
        if f"/{path.relative_to(upper)}" not in allowed
    )  # fmt: skip


def sbom(installed: list[Pin]) -> str:
    requirements = BUILD / "image-requirements.txt"
    requirements.write_text("".join(pin.requirement_lines() for pin in installed))
    target = BUILD / "sbom.cdx.json"
    tool = Path(sys.executable).parent / "cyclonedx-py"
    run(str(tool), "requirements", str(requirements), "--output-reproducible", "-o", str(target))
    document = json.loads(target.read_text())
    names = {c["name"] for c in document["components"]}
    expect(names == {pin.name for pin in installed}, names)
    return f"{target.relative_to(ROOT)}, CycloneDX {document['specVersion']}, {len(names)} packages"


def contents(checks: Checks, container: str) -> list[Pin]:
    """The probe's findings as checks; returns the lock's pins the image must hold."""
    found = json.loads(run(*in_image(container, "python", "-c", PROBE)))
    pins = [pin for pin in read_lock(RUNTIME_LOCK).values()
            if pin.applies_to(found["environment"])]  # fmt: skip

    def packages() -> str:
        expected = {pin.name: pin.version for pin in pins}
        actual = {canonicalize_name(n): v for n, v in found["packages"].items()}
        missing, extra = expected.keys() - actual, actual.keys() - expected
        expect(actual == expected, f"missing {missing}, not in the lock {extra}, versions differ")
        return f"exactly the {len(pins)} packages {RUNTIME_LOCK.name} pins for this platform"

    def no_tools() -> str:
        expect(not found["pip"] and not found["compilers"], found)
        return "no pip, no cc/gcc/g++/clang/make"

    checks("installed packages", packages)
    checks("build tools", no_tools)
    return pins


def main() -> int:
    if os.geteuid() != 0 or not shutil.which("buildah"):
        print("image-test needs root and buildah (Debian: apt-get install buildah debootstrap)")
        return 2
    BUILD.mkdir(exist_ok=True)
    base_image = os.environ.get("IMAGE_TEST_BASE") or base.ensure()
    build(base_image)
    print(f"\nimage-test: {IMAGE} on {base_image}", flush=True)
    checks = Checks()
    config = inspect("image", IMAGE)["Docker"]["config"]

    def configured() -> str:
        expect(config["User"] == "10001:10001", config["User"])
        expect(bool(config["Healthcheck"]["Test"]), config)
        return f"user {config['User']}, CMD {config['Cmd']}, health check set"

    checks("image config", configured)
    with working_container() as (container, upper), tempfile.TemporaryDirectory() as empty:
        installed = contents(checks, container)
        check_running(checks, container, config, Path(empty))

        def untouched() -> str:
            expect(not (paths := written(upper)), f"written to the root filesystem: {paths}")
            return "the run wrote nothing outside its tmpfs: a read-only root filesystem works"

        checks("root filesystem", untouched)

    def size() -> str:
        added = added_megabytes(IMAGE, base_image)
        expect(added < SIZE_TARGET_MB, f"{added:.1f} MB added, the target is {SIZE_TARGET_MB} MB")
        return f"{added:.1f} MB added on top of the base (target: under {SIZE_TARGET_MB} MB)"

    checks("image size", size)
    checks("SBOM", lambda: sbom(installed))
    if checks.failed:
        print(f"\nimage-test FAILED: {', '.join(checks.failed)}")
        return 1
    print("\nimage-test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
