"""The packaging an owner deploys from: lock files, Docker image, compose file, CI script and linter pins.

These read the files as the tools would (pyproject via tomllib, compose.yaml via YAML, the Dockerfile as
instructions), so a dependency added to pyproject without re-locking, a secret sent into the build context,
or an image that runs as root fails here rather than in a deployment.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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


# --- compose.multi.yaml: PostgreSQL and two bot processes on shards 0 and 1 of 2 -------------------------

#: Compose's variable forms this file may use: ${NAME}, ${NAME:?message}, ${NAME?message}.
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Z_][A-Z0-9_]*)(?:(?P<op>:?\?)(?P<message>[^}]*))?\}")
#: What `.env` would hold for the interpolation tests (never a real secret).
ENV_FILE = {"POSTGRES_PASSWORD": "pw0123456789abcdef"}
SECRET_NAMES = ("PASSWORD", "_TOKEN", "_KEY", "DATABASE_URL")


def load_compose(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / name).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


MULTI = load_compose("compose.multi.yaml")


def interpolate(value: str, env: dict[str, str]) -> str:
    """`value` as compose would pass it on; a `:?`/`?` variable unset (or empty, for `:?`) is an error."""

    def substitute(match: re.Match[str]) -> str:
        name, op = match["name"], match["op"]
        found = env.get(name)
        if (op == ":?" and not found) or (op == "?" and found is None):
            raise LookupError(f"{name}: {match['message']}")
        return found or ""

    return _VARIABLE.sub(substitute, value)


def bots(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run the bot image."""
    return {name: s for name, s in compose["services"].items() if s.get("image") == "seedance-bot"}


def test_compose_multi_runs_postgres_with_a_named_volume_a_tcp_health_check_and_the_password_from_env():
    postgres = MULTI["services"]["postgres"]
    image, _, tag = postgres["image"].partition(":")
    assert image == "postgres", "the official image"
    # A major pinned: `latest` moving to a new major would leave a data directory it cannot read.
    assert re.fullmatch(r"\d+(\.\d+)?(-[a-z0-9]+)?", tag), postgres["image"]
    volume, _, target = postgres["volumes"][0].partition(":")
    assert target == "/var/lib/postgresql/data"
    assert volume in MULTI["volumes"], "a named volume, declared, so the data outlives the container"
    password = postgres["environment"]["POSTGRES_PASSWORD"]
    assert _VARIABLE.fullmatch(password) and _VARIABLE.fullmatch(password)["op"] == ":?", (
        "the password comes from .env, and compose refuses to start without one"
    )
    test = postgres["healthcheck"]["test"]
    assert test[:2] == ["CMD", "pg_isready"]
    # Over TCP: the image's first-start set-up server answers on the unix socket only, and is not the one.
    assert "--host=127.0.0.1" in test or ["-h", "127.0.0.1"] in [test[i : i + 2] for i in range(len(test))]
    assert f"--username={postgres['environment']['POSTGRES_USER']}" in test
    assert f"--dbname={postgres['environment']['POSTGRES_DB']}" in test
    assert "ports" not in postgres, "the database is for the bots on the compose network only"


def test_compose_multi_runs_two_bots_that_share_the_shards_and_only_one_runs_shard_zero():
    services = bots(MULTI)
    assert len(services) == 2
    shards: list[int] = []
    counts = set()
    for service in services.values():
        environment = service["environment"]
        counts.add(environment["DISCORD_SHARD_COUNT"])
        shards += [int(shard) for shard in environment["DISCORD_SHARD_IDS"].split(",")]
    assert counts == {"2"}, "every process must agree on the shard count"
    # Every shard run by exactly one process: shard 0 (the commands' sync) once, none left without a process.
    assert sorted(shards) == [0, 1]


def test_compose_multi_bots_use_the_database_service_once_it_is_healthy_with_their_own_health_checks():
    postgres = MULTI["services"]["postgres"]["environment"]
    for name, service in bots(MULTI).items():
        assert service["build"] == ".", name
        assert service["env_file"] == ".env", name
        assert service["restart"] in {"unless-stopped", "always"}, name
        assert service["depends_on"] == {"postgres": {"condition": "service_healthy"}}, name
        assert_probes_healthz(service["healthcheck"]["test"])
        url = urlsplit(interpolate(service["environment"]["DATABASE_URL"], ENV_FILE))
        assert url.scheme == "postgresql", name
        assert (url.hostname, url.port) == ("postgres", 5432), f"{name}: the compose service, by its name"
        assert (url.username, url.password) == (postgres["POSTGRES_USER"], ENV_FILE["POSTGRES_PASSWORD"])
        assert url.path == f"/{postgres['POSTGRES_DB']}", name
        with pytest.raises(LookupError, match="POSTGRES_PASSWORD"):
            interpolate(service["environment"]["DATABASE_URL"], {})


def test_compose_multi_bot_environments_are_settings_the_bot_accepts(monkeypatch, tmp_path):
    from bot.settings import load_settings
    from bot.storage import is_postgres_url

    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    runs = []
    for service in bots(MULTI).values():
        with monkeypatch.context() as patch:
            for name in os.environ:
                if name.startswith(("DISCORD_", "DATABASE_", "RUNCOMFY_")):
                    patch.delenv(name)
            patch.setenv("DISCORD_TOKEN", "token")
            patch.setenv("RUNCOMFY_API_KEY", "key")
            for name, value in service["environment"].items():
                patch.setenv(name, interpolate(str(value), ENV_FILE))
            settings = load_settings()
        assert is_postgres_url(settings.database_url)
        runs.append(settings.discord_shards)
    assert sorted(runs) == [(0,), (1,)]


def test_compose_files_hard_code_no_secret():
    for name in ("compose.yaml", "compose.multi.yaml"):
        compose = load_compose(name)
        for service_name, service in compose["services"].items():
            environment = service.get("environment", {})
            assert isinstance(environment, dict), f"{name}: {service_name}: environment as a mapping"
            for key, value in environment.items():
                if not any(marker in key for marker in SECRET_NAMES):
                    continue
                # Whatever secret the value carries is a ${VARIABLE} from .env: without it, none is left.
                without = _VARIABLE.sub("", str(value))
                parts = urlsplit(without)
                leftover = parts.password if "://" in without else without
                assert not leftover, f"{name}: {service_name}: {key} hard-codes a secret"
        assert "DISCORD_TOKEN=" not in (ROOT / name).read_text(encoding="utf-8")


def test_compose_multi_is_its_own_project_so_it_never_mixes_with_the_single_process_one():
    single = load_compose("compose.yaml")
    assert MULTI.get("name"), "a project name of its own (else both files share the directory's name)"
    assert set(MULTI["volumes"]).isdisjoint(single["volumes"])
    single_bot = single["services"]["bot"]
    for service in bots(MULTI).values():
        assert service["build"] == single_bot["build"] and service["image"] == single_bot["image"]


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
