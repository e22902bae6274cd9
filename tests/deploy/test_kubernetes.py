"""deploy/kubernetes/, offline: every manifest against the Kubernetes API schemas (file by file,
kubernetes-validate, strict), then the base and the example overlay as kustomize renders them
(`kubectl kustomize`), checked for what a schema cannot see: names that must match, settings the
proxy accepts, the shutdown budget, the security context, probes, scaling and metrics."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from app.config import Settings
from tests.lockfile import ROOT

KUBE = ROOT / "deploy/kubernetes"
OLDEST = "1.30.0"  # the preStop `sleep` action
VERSIONS = [OLDEST, kubernetes_validate.latest_version()]
PROMETHEUS_OPERATOR = "monitoring.coreos.com/v1"  # a CRD: not in Kubernetes' own schemas
KUBECTL = shutil.which("kubectl")
Doc = dict[str, Any]


def manifests() -> list[Path]:
    return sorted(p for p in KUBE.rglob("*.yaml") if p.name != "kustomization.yaml")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", manifests(), ids=lambda p: str(p.relative_to(KUBE)))
def test_each_manifest_follows_the_kubernetes_api(path: Path, version: str) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        if doc["apiVersion"] != PROMETHEUS_OPERATOR:
            kubernetes_validate.validate(doc, version, strict=True)


# --------------------------------------------------------------------------- rendered


class Rendered:
    """What `kubectl apply -k` would send, by kind and (hash-free) name."""

    def __init__(self, source: str, docs: list[Doc]) -> None:
        self.source = source
        self.docs = docs

    def all(self, kind: str) -> list[Doc]:
        return [d for d in self.docs if d["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> Doc:
        found = [
            d for d in self.all(kind)
            if name is None or re.sub(r"-[a-z0-9]{10}$", "", d["metadata"]["name"]) == name
        ]  # fmt: skip
        assert len(found) == 1, (kind, name, [d["metadata"]["name"] for d in found])
        return found[0]

    @property
    def pod(self) -> Doc:
        spec: Doc = self.one("Deployment")["spec"]["template"]
        return spec

    @property
    def container(self) -> Doc:
        (container,) = self.pod["spec"]["containers"]
        return container

    def settings(self) -> dict[str, str]:
        name = self.container["envFrom"][0]["configMapRef"]["name"]
        (config,) = [c for c in self.all("ConfigMap") if c["metadata"]["name"] == name]
        return dict(config["data"])


@pytest.fixture(scope="module", params=["base", "overlays/example"])
def rendered(request: pytest.FixtureRequest) -> Rendered:
    if KUBECTL is None:
        pytest.skip("kubectl (kustomize built in) is not installed; the machine image has it")
    done = subprocess.run(
        [KUBECTL, "kustomize", str(KUBE / request.param)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return Rendered(request.param, list(yaml.safe_load_all(done.stdout)))


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and selector.items() <= labels.items()


def test_the_rendered_objects_follow_the_kubernetes_api(rendered) -> None:
    for doc in rendered.docs:
        if doc["apiVersion"] != PROMETHEUS_OPERATOR:
            kubernetes_validate.validate(doc, VERSIONS[-1], strict=True)


def test_the_proxy_accepts_the_settings_and_the_mapping_file(rendered, tmp_path) -> None:
    settings = rendered.settings()
    mount = next(m for m in rendered.container["volumeMounts"] if m["name"] == "model-mapping")
    mapping_path = Path(settings["MODEL_MAPPING_FILE"])
    assert mapping_path.parent == Path(mount["mountPath"])
    volume = next(v for v in rendered.pod["spec"]["volumes"] if v["name"] == "model-mapping")
    mapping = rendered.all("ConfigMap")
    (files,) = [c["data"] for c in mapping if c["metadata"]["name"] == volume["configMap"]["name"]]
    (tmp_path / mapping_path.name).write_text(files[mapping_path.name])
    # Exactly as the proxy reads its environment at start: a bad value raises ConfigError.
    parsed = Settings.from_env(settings | {"MODEL_MAPPING_FILE": str(tmp_path / mapping_path.name)})
    ports = {p["name"]: p["containerPort"] for p in rendered.container["ports"]}
    assert ports == {"http": parsed.port, "metrics": parsed.metrics_port}


def test_a_stopping_pod_finishes_its_streams_before_the_kubelet_kills_it(rendered) -> None:
    pre_stop = rendered.container["lifecycle"]["preStop"]["sleep"]["seconds"]
    graceful = int(rendered.settings()["GRACEFUL_TIMEOUT"])
    assert rendered.pod["spec"]["terminationGracePeriodSeconds"] > pre_stop + graceful


def test_workers_follow_the_cpu_limit(rendered) -> None:
    container = rendered.container
    (source,) = [e["valueFrom"] for e in container["env"] if e["name"] == "WEB_CONCURRENCY"]
    assert source["resourceFieldRef"] == {
        "containerName": container["name"], "resource": "limits.cpu", "divisor": "1"
    }  # fmt: skip
    assert container["resources"]["limits"]["cpu"]
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])


def test_the_pod_runs_locked_down(rendered) -> None:
    dockerfile_user = re.search(r"^USER (\d+)", (ROOT / "Dockerfile").read_text(), re.M)
    assert dockerfile_user
    pod_security = rendered.pod["spec"]["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    assert pod_security["runAsUser"] == int(dockerfile_user[1])
    security = rendered.container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    # The one place the proxy writes: its metrics directory, in memory.
    metrics_dir = next(
        e["value"] for e in rendered.container["env"] if e["name"] == "PROMETHEUS_MULTIPROC_DIR"
    )
    mount = next(m for m in rendered.container["volumeMounts"] if m["mountPath"] == metrics_dir)
    volume = next(v for v in rendered.pod["spec"]["volumes"] if v["name"] == mount["name"])
    assert volume["emptyDir"]["medium"] == "Memory"


def test_probes_use_the_proxys_health_endpoints(rendered) -> None:
    container = rendered.container
    # Liveness from the master's operations port: answered when every worker slot is taken.
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}


def test_services_select_the_pods_and_name_their_ports(rendered) -> None:
    labels = rendered.pod["metadata"]["labels"]
    port_names = {p["name"] for p in rendered.container["ports"]}
    services = rendered.all("Service")
    assert {s["metadata"]["name"] for s in services} == {"ollama-proxy", "ollama-proxy-metrics"}
    for service in services:
        assert matches(service["spec"]["selector"], labels)
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    # Clients' Service never carries the metrics port.
    clients = rendered.one("Service", "ollama-proxy")
    assert [p["targetPort"] for p in clients["spec"]["ports"]] == ["http"]


def test_scaling_and_disruptions_keep_pods_serving(rendered) -> None:
    hpa, pdb = rendered.one("HorizontalPodAutoscaler"), rendered.one("PodDisruptionBudget")
    deployment = rendered.one("Deployment")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    assert hpa["spec"]["minReplicas"] > pdb["spec"]["maxUnavailable"]
    assert matches(pdb["spec"]["selector"]["matchLabels"], rendered.pod["metadata"]["labels"])
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_the_metrics_port_is_open_only_inside_the_cluster(rendered) -> None:
    policy = rendered.one("NetworkPolicy")
    assert matches(policy["spec"]["podSelector"]["matchLabels"], rendered.pod["metadata"]["labels"])
    for rule in policy["spec"]["ingress"]:
        ports = {p["port"] for p in rule["ports"]}
        if "metrics" in ports:
            assert ports == {"metrics"}
            assert rule["from"], "metrics open to every source"
            assert all("ipBlock" not in source for source in rule["from"])
    annotations = rendered.pod["metadata"]["annotations"]
    metrics_port = next(p for p in rendered.container["ports"] if p["name"] == "metrics")
    assert annotations["prometheus.io/port"] == str(metrics_port["containerPort"])


def test_the_service_monitor_scrapes_the_metrics_service(rendered) -> None:
    monitors = rendered.all("ServiceMonitor")
    if rendered.source == "base":
        assert not monitors, "the base must apply to clusters without the Prometheus Operator"
        return
    (monitor,) = monitors
    assert monitor["apiVersion"] == PROMETHEUS_OPERATOR
    service = rendered.one("Service", "ollama-proxy-metrics")
    assert matches(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    names = {p["name"] for p in service["spec"]["ports"]}
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= names


def test_the_deployment_reads_its_keys_from_a_secret_with_none_committed(rendered) -> None:
    (ref,) = [e["secretRef"] for e in rendered.container["envFrom"] if "secretRef" in e]
    secrets = rendered.all("Secret")
    if not secrets:  # the base: an overlay (or kubectl) provides it
        assert ref["optional"] is True
        return
    (secret,) = secrets
    assert secret["metadata"]["name"] == ref["name"]
    assert set(secret["data"]) == {"OPENAI_API_KEY", "PROXY_API_KEYS"}
    assert set(secret["data"].values()) == {""}, "a real key is committed"
