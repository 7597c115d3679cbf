"""The packaging an owner deploys from: lock files, Docker image, compose file, CI script and linter pins.

These read the files as the tools would (pyproject via tomllib, compose.yaml via YAML, the Dockerfile as
instructions), so a dependency added to pyproject without re-locking, a secret sent into the build context,
or an image that runs as root fails here rather than in a deployment.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # no stubs; the tests are outside mypy's files
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
HEALTH_URL = "http://127.0.0.1:8080/healthz"


@dataclass(frozen=True)
class Locked:
    """One package pinned in a lock file."""

    version: Version
    hashes: int


def read_lock(name: str) -> dict[str, Locked]:
    """The packages of a `uv pip compile --generate-hashes` lock file, by canonical name."""
    text = (ROOT / name).read_text(encoding="utf-8")
    # A requirement spans its continuation lines (`\` then `--hash=...`); comments are not part of it.
    logical = re.sub(r"\\\n", " ", text)
    packages: dict[str, Locked] = {}
    for raw in logical.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        requirement_text, *hashes = line.split("--hash=")
        requirement = Requirement(requirement_text.strip())
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"{name}: {requirement} is not pinned exactly"
        packages[canonicalize_name(requirement.name)] = Locked(Version(specifier.version), len(hashes))
    return packages


def requirements(*groups: list[str]) -> list[Requirement]:
    """pyproject requirement strings, parsed."""
    return [Requirement(text) for group in groups for text in group]


RUNTIME = requirements(PYPROJECT["project"]["dependencies"])
DEV = requirements(PYPROJECT["project"]["optional-dependencies"]["dev"])
BUILD = requirements(PYPROJECT["build-system"]["requires"])


def assert_lock_covers(lock_name: str, wanted: list[Requirement]) -> None:
    """Every wanted requirement is pinned in the lock at a version pyproject allows, with hashes."""
    lock = read_lock(lock_name)
    missing = sorted(str(r) for r in wanted if canonicalize_name(r.name) not in lock)
    assert not missing, f"{lock_name} lacks {missing}: regenerate it (CONTRIBUTING.md)"
    for requirement in wanted:
        locked = lock[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(locked.version, prereleases=True), (
            f"{lock_name} pins {requirement.name}=={locked.version}, outside pyproject's {requirement}"
        )
    unhashed = sorted(name for name, locked in lock.items() if locked.hashes == 0)
    assert not unhashed, f"{lock_name}: no hashes for {unhashed}"


def test_runtime_lock_pins_every_runtime_and_build_dependency() -> None:
    assert_lock_covers("requirements.lock", RUNTIME + BUILD)


def test_dev_lock_pins_runtime_dev_and_build_dependencies() -> None:
    assert_lock_covers("requirements-dev.lock", RUNTIME + DEV + BUILD)


def test_ci_tests_the_versions_the_image_ships() -> None:
    runtime, dev = read_lock("requirements.lock"), read_lock("requirements-dev.lock")
    differing = {
        name: (runtime[name].version, dev[name].version)
        for name in runtime
        if name not in dev or dev[name].version != runtime[name].version
    }
    assert not differing, f"the runtime and dev locks disagree (runtime, dev): {differing}"


@pytest.mark.parametrize("tool", ["ruff", "mypy"])
def test_linters_are_pinned_exactly_and_locked_at_that_version(tool: str) -> None:
    (requirement,) = [r for r in DEV if canonicalize_name(r.name) == tool]
    (specifier,) = requirement.specifier
    assert specifier.operator == "==", f"{tool} must be pinned exactly in the dev extra, not {requirement}"
    assert read_lock("requirements-dev.lock")[tool].version == Version(specifier.version)


def dockerignore_patterns() -> set[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


@pytest.mark.parametrize("path", [".env", ".venv", ".git", "data", "*.sqlite3", "__pycache__", "*.egg-info"])
def test_dockerignore_keeps_secrets_and_local_state_out_of_the_build_context(path: str) -> None:
    patterns = dockerignore_patterns()
    assert path in patterns
    assert f"!{path}" not in patterns, f"{path} is excluded, then included again"


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction, continuation lines joined."""

    keyword: str
    arguments: str


def dockerfile() -> list[Instruction]:
    lines = [
        line
        for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
        if not line.lstrip().startswith("#")
    ]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    instructions = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, arguments = line.strip().partition(" ")
            instructions.append(Instruction(keyword.upper(), " ".join(arguments.split())))
    return instructions


def pip_installs(command: str) -> list[list[str]]:
    """The arguments of every `pip install` in shell command lines (comment lines skipped)."""
    code = "\n".join(line for line in command.splitlines() if not line.lstrip().startswith("#"))
    installs = []
    for part in re.split(r"&&|;|\n", code):
        words = shlex.split(part)
        for index in range(len(words) - 1):
            if words[index].endswith("pip") and words[index + 1] == "install":
                installs.append(words[index + 2 :])
    return installs


def test_dockerfile_installs_only_from_the_hash_checked_lock() -> None:
    installs = [args for i in dockerfile() if i.keyword == "RUN" for args in pip_installs(i.arguments)]
    assert ["--require-hashes", "-r", "requirements.lock"] in installs
    for args in installs:
        assert "--require-hashes" in args or "--no-deps" in args, f"unlocked install: pip install {args}"


def test_image_runs_as_a_non_root_user() -> None:
    instructions = dockerfile()
    users = [i.arguments for i in instructions if i.keyword == "USER"]
    assert users, "no USER: the bot would run as root"
    # The last USER is the one the bot runs as.
    assert users[-1].split(":")[0] not in {"root", "0"}


def assert_probes_healthz(command: list[str]) -> None:
    """A health check runs Python's urllib against /healthz (slim images have no curl) and is valid Python."""
    assert command[:3] == ["CMD", "python", "-c"], command
    code = command[3]
    assert HEALTH_URL in code
    compile(code, "<healthcheck>", "exec")


def test_dockerfile_checks_health_and_listens_beyond_loopback() -> None:
    instructions = dockerfile()
    (healthcheck,) = [i.arguments for i in instructions if i.keyword == "HEALTHCHECK"]
    assert_probes_healthz(["CMD", *json.loads(healthcheck.split("CMD", 1)[1])])
    env = " ".join(i.arguments for i in instructions if i.keyword == "ENV").split()
    assert "HTTP_LISTEN_HOST=0.0.0.0" in env


def test_compose_runs_the_bot_with_its_data_volume_env_file_restart_and_health_check() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    bot = compose["services"]["bot"]
    assert bot["env_file"] == ".env"
    assert bot["restart"] in {"unless-stopped", "always"}
    volume, _, target = bot["volumes"][0].partition(":")
    assert target == "/app/data", "the database lives in /app/data (DATABASE_PATH in the Dockerfile)"
    assert volume in compose["volumes"], "a named volume, declared, so data outlives the container"
    assert_probes_healthz(bot["healthcheck"]["test"])


def test_ci_installs_from_the_dev_lock_and_ends_with_the_readme_test_command() -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    commands = [line for line in script.splitlines() if line.strip() and not line.startswith("#")]
    installs = pip_installs(script)
    assert ["--quiet", "--require-hashes", "-r", "requirements-dev.lock"] in installs
    for args in installs:
        assert "--require-hashes" in args or "--no-deps" in args, f"unlocked install: pip install {args}"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Run the tests", 1)[1]
    readme_command = re.search(r"```bash\n(.+?)\n```", section, re.DOTALL)
    assert readme_command is not None
    assert commands[-1] == readme_command.group(1).strip()


def test_pre_commit_runs_the_ci_linters_from_the_venv() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    for hook_id in ("ruff-check", "ruff-format", "mypy"):
        hook = hooks[hook_id]
        # language: system runs the venv's pinned tools, so committing needs no network.
        assert hook["language"] == "system"
        assert hook["entry"].startswith(".venv/bin/")
        assert hook["entry"].split()[0] in script, f"{hook_id} runs a tool CI does not"
