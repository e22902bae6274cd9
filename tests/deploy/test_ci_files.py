""".github/, offline: the workflow and the Dependabot configuration against their schemas
(check-jsonschema's vendored copies), and what each job runs against what the repository has."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.lockfile import ROOT

WORKFLOW = ROOT / ".github/workflows/ci.yml"
DEPENDABOT = ROOT / ".github/dependabot.yml"
NIGHTLY = {"schedule", "workflow_dispatch"}


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    document["on"] = document.pop(True)  # YAML 1.1 reads the key `on` as true
    return document


def run_lines(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def runs_on_events(job: dict[str, Any]) -> set[str]:
    condition = job.get("if", "")
    named = set(re.findall(r"github\.event_name == '(\w+)'", condition))
    return named or {"push", "pull_request", "schedule", "workflow_dispatch"}


@pytest.mark.parametrize(
    ("path", "schema"),
    [(WORKFLOW, "vendor.github-workflows"), (DEPENDABOT, "vendor.dependabot")],
    ids=["workflow", "dependabot"],
)
def test_the_file_follows_its_schema(path: Path, schema: str) -> None:
    checker = Path(sys.executable).with_name("check-jsonschema")
    done = subprocess.run(
        [str(checker), "--builtin-schema", schema, str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_push_and_pull_request_runs_make_test_on_each_python(workflow) -> None:
    assert {"push", "pull_request"} | NIGHTLY <= set(workflow["on"])
    test = workflow["jobs"]["test"]
    assert {"push", "pull_request"} <= runs_on_events(test)
    assert "bash .ci/run" in run_lines(test)
    script = (ROOT / ".ci/run").read_text()
    # The README's test commands, in order: the suite, then the real servers.
    assert script.index("    make test\n") < script.index("    make e2e-real\n")
    versions = test["strategy"]["matrix"]["python"]
    assert versions == ["3.11", "3.12", "3.13"]
    # The Makefile takes the newest Python it finds unless PYTHON names the matrix's.
    assert test["env"]["PYTHON"] == "python${{ matrix.python }}"


def test_the_locks_are_audited_on_every_change(workflow) -> None:
    audit = workflow["jobs"]["audit"]
    assert {"push", "pull_request"} <= runs_on_events(audit)
    assert "make audit" in run_lines(audit)


@pytest.mark.parametrize(("job", "target"), [("e2e-real", "e2e-real"), ("image", "image-test")])
def test_the_slow_suites_run_nightly_and_on_demand(workflow, job, target) -> None:
    assert runs_on_events(workflow["jobs"][job]) == NIGHTLY
    assert f"make {target}" in run_lines(workflow["jobs"][job])


def test_every_make_target_the_workflow_names_exists(workflow) -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][\w-]*):", makefile, re.MULTILINE))
    used = set()
    for job in workflow["jobs"].values():
        used |= set(re.findall(r"\bmake ([a-z][\w-]*)", run_lines(job)))
    assert used
    assert used <= targets, used - targets


def test_every_action_is_pinned_to_a_release(workflow) -> None:
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            if "uses" in step:
                assert re.fullmatch(r"[\w-]+/[\w-]+@(v\d+(\.\d+)*|[0-9a-f]{40})", step["uses"])


def test_dependabot_watches_every_kind_of_pin_the_repository_has() -> None:
    updates = yaml.safe_load(DEPENDABOT.read_text())["updates"]
    watched = {(u["package-ecosystem"], u["directory"]) for u in updates}
    assert watched == {
        ("pip", "/"),  # requirements.txt, requirements-dev.txt
        ("docker", "/"),  # Dockerfile
        ("docker-compose", "/"),  # compose.yaml
        ("github-actions", "/"),  # .github/workflows/
    }
    for name in ("requirements.txt", "requirements-dev.txt", "Dockerfile", "compose.yaml"):
        assert (ROOT / name).exists(), name
    # Dependabot reads FROM lines, not ARG defaults: the default base must be spelt out in one.
    assert re.search(r"^FROM python:[\w.-]+ AS ", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
