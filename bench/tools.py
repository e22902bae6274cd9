"""The outside programs the bench needs (nginx, wrk), and what machine it ran on."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys

from harness.proxy_process import free_port

__all__ = ["ensure_tools", "free_port", "machine"]

# Debian package for each program; nginx-light is enough (`return` and `set` are built in).
_PACKAGES = {"nginx": "nginx-light", "wrk": "wrk"}


def _missing() -> list[str]:
    return [name for name in _PACKAGES if _which(name) is None]


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")


def ensure_tools() -> None:
    """Install nginx and wrk with apt-get when root; otherwise say what to install and exit."""
    missing = _missing()
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
        missing = _missing()
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
    nginx, wrk = _which("nginx") or "nginx", _which("wrk") or "wrk"
    return {
        "cores": str(len(os.sched_getaffinity(0))),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "nginx": _version([nginx, "-v"], r"nginx/(\S+)"),
        "wrk": _version([wrk, "-v"], r"wrk (\S+)"),
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
