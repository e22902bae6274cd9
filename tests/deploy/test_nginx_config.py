"""deploy/nginx/: the timeouts that no quick end-to-end test can wait for (tests/e2e/test_nginx.py
runs the rest with the real nginx)."""

from __future__ import annotations

import re

from app.config import Settings
from tests.nginx_process import ROOT, TEMPLATE


def seconds(directive: str, text: str) -> float:
    values = re.findall(rf"^\s*{directive}\s+(\d+)s;", text, re.MULTILINE)
    assert len(values) == 1, f"{directive}: {values}"
    return float(values[0])


def test_nginx_outwaits_the_proxys_own_backend_timeout() -> None:
    # A generation silent for REQUEST_TIMEOUT gets the proxy's explanatory 504; were nginx to
    # give up first, the client would get nginx's bare timeout instead.
    assert seconds("proxy_read_timeout", TEMPLATE.read_text()) > Settings.request_timeout


def test_nginx_drops_idle_upstream_connections_before_the_proxy_does() -> None:
    # Otherwise nginx may send a request on a connection gunicorn is closing: a spurious 502.
    gunicorn = re.search(r"^keepalive = (\d+)", (ROOT / "gunicorn.conf.py").read_text(), re.M)
    assert gunicorn
    assert seconds("keepalive_timeout", TEMPLATE.read_text()) < int(gunicorn[1])
