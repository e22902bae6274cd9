"""The outside programs the bench needs (nginx, wrk), and what machine it ran on."""

from __future__ import annotations

import ctypes
import os
import platform
import re
import shutil
import signal
import subprocess
import sys

from harness.proxy_process import free_port

__all__ = ["die_with_parent", "ensure_tools", "free_port", "machine", "which"]

# Debian package for each program; nginx-light is enough (`return` and `set` are built in).
# strace only for `python -m bench.syscalls`.
_PACKAGES = {"nginx": "nginx-light", "wrk": "wrk", "strace": "strace"}


def die_with_parent() -> None:
    """In a child before exec: if the bench is killed, the kernel sends the child SIGTERM."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def _missing(names: tuple[str, ...]) -> list[str]:
    return [name for name in names if _find(name) is None]


def _find(name: str) -> str | None:
    # /usr/sbin is not on every user's PATH.
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")


def which(name: str) -> str:
    """The program's path (after ensure_tools: it is there); the bare name otherwise."""
    return _find(name) or name


def ensure_tools(names: tuple[str, ...] = ("nginx", "wrk")) -> None:
    """Install the programs with apt-get when root; otherwise say what to install and exit."""
    missing = _missing(names)
    if not missing:
        return
    packages = [_PACKAGES[name] for name in missing]
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"installing {' '.join(packages)} with apt-get ...", file=sys.stderr)
        install = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
        quiet = {
            "stdout": subprocess.DEVNULL,
            "env": {**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        }
        if subprocess.run(install, check=False, **quiet).returncode:
            subprocess.run(["apt-get", "update"], check=False, **quiet)
            subprocess.run(install, check=False, **quiet)
        missing = _missing(names)
    if missing:
        sys.exit(
            f"the bench needs {' and '.join(missing)}: install the Debian packages "
            f"{' '.join(_PACKAGES[name] for name in missing)} "
            f"(sudo apt-get install -y {' '.join(_PACKAGES[name] for name in missing)})"
        )


def _version(argv: list[str], pattern: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    found = re.search(pattern, done.stdout + done.stderr)
    return found.group(1) if found else "unknown"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, str]:
    nginx, wrk = which("nginx"), which("wrk")
    return {
        "cores": str(len(os.sched_getaffinity(0))),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "nginx": _version([nginx, "-v"], r"nginx/(\S+)"),
        "wrk": _version([wrk, "-v"], r"wrk (\S+)"),
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
