"""Artifacts on S3-compatible storage: what web and workers on several hosts share.

STORAGE_BACKEND=s3 is turned into Django's STORAGES by config/settings.py in a process of its
own (as a deployment would), and the adapter registry then stores and fetches a real adapter
folder through django-storages and boto3 over HTTP, against an S3-compatible server started
for the test (moto's standalone server; there is no cloud here).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "prefloop-artifacts"
PREFIX = "prod"

pytestmark = pytest.mark.django_db


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def s3_endpoint(tmp_path):
    pytest.importorskip("moto.server", reason="moto[server] (a test extra) is not installed")
    boto3 = pytest.importorskip("boto3")
    port = _free_port()
    log = open(tmp_path / "s3.log", "wb")  # noqa: SIM115  (closed below)
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail(f"the S3 server did not start: {(tmp_path / 's3.log').read_text()[-2000:]}")
                time.sleep(0.1)
        endpoint = f"http://127.0.0.1:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="test-key", aws_secret_access_key="test-secret")
        client.create_bucket(Bucket=BUCKET)
        yield endpoint, client
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


def _settings_storages(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STORAGE_"))}
    probe = "import json; from config import settings; print(json.dumps(settings.STORAGES))"
    return subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60)


def _s3_env(endpoint: str) -> dict:
    return {
        "STORAGE_BACKEND": "s3",
        "AWS_STORAGE_BUCKET_NAME": BUCKET,
        "AWS_S3_ENDPOINT_URL": endpoint,
        "AWS_S3_REGION_NAME": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test-key",
        "AWS_SECRET_ACCESS_KEY": "test-secret",
        "AWS_LOCATION": PREFIX,
    }


def _adapter_folder(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4}))
    (folder / "adapter_model.safetensors").write_bytes(os.urandom(4096))
    (folder / "prefloop.json").write_text(json.dumps({"kind": "lora", "job": "dpo"}))
    return folder


def test_storage_backend_s3_needs_a_bucket_and_other_values_are_refused():
    missing = _settings_storages(STORAGE_BACKEND="s3")
    assert missing.returncode != 0 and "STORAGE_BACKEND=s3 needs AWS_STORAGE_BUCKET_NAME" in missing.stderr
    wrong = _settings_storages(STORAGE_BACKEND="ftp")
    assert wrong.returncode != 0 and "STORAGE_BACKEND must be local or s3, not 'ftp'" in wrong.stderr
    local = _settings_storages()
    assert json.loads(local.stdout)["default"]["BACKEND"] == "django.core.files.storage.FileSystemStorage"


def test_an_adapter_stored_on_s3_by_one_host_is_fetched_whole_by_another(s3_endpoint, settings, tmp_path, project):
    from django.core.files.storage import storages

    from tuning.models import Adapter, BaseModel
    from tuning.services.adapters import adapter_local_dir, adapter_register, adapter_zip

    endpoint, client = s3_endpoint
    done = _settings_storages(**_s3_env(endpoint))
    assert done.returncode == 0, done.stderr
    settings.STORAGES = json.loads(done.stdout)
    assert type(storages["default"]).__name__ == "S3Storage"

    # The worker that trained it: registers the folder (uploaded file by file, then the row).
    settings.PREFLOOP_MODEL_CACHE = tmp_path / "worker-a-cache"
    source = _adapter_folder(tmp_path / "trained")
    base = BaseModel.objects.create(name="tiny", source="/nowhere")
    adapter = adapter_register(folder=source, base_model=base, project=project, name="v1-dpo")
    keys = {item["Key"] for item in client.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert keys == {f"{PREFIX}/{adapter.path}/{name}" for name in ("adapter_config.json", "adapter_model.safetensors", "prefloop.json")}

    # Another host with an empty cache: downloads it once, byte for byte.
    settings.PREFLOOP_MODEL_CACHE = tmp_path / "worker-b-cache"
    local = adapter_local_dir(Adapter.objects.get(pk=adapter.pk))
    assert local.is_relative_to(tmp_path / "worker-b-cache")
    for name in ("adapter_config.json", "adapter_model.safetensors", "prefloop.json"):
        assert (local / name).read_bytes() == (source / name).read_bytes()
    # The web process's download of the same adapter.
    with zipfile.ZipFile(adapter_zip(adapter)) as archive:
        assert sorted(Path(n).name for n in archive.namelist()) == ["adapter_config.json", "adapter_model.safetensors", "prefloop.json"]


def test_a_registration_that_fails_leaves_nothing_in_the_bucket(s3_endpoint, settings, tmp_path, project):
    from tuning.models import Adapter, BaseModel
    from tuning.services.adapters import adapter_register

    endpoint, client = s3_endpoint
    settings.STORAGES = json.loads(_settings_storages(**_s3_env(endpoint)).stdout)
    base = BaseModel.objects.create(name="tiny", source="/nowhere")

    def lost_the_job(_adapter):
        raise RuntimeError("the run no longer owns its job")

    with pytest.raises(RuntimeError):
        adapter_register(folder=_adapter_folder(tmp_path / "trained"), base_model=base, project=project, name="v1", before_commit=lost_the_job)
    assert not Adapter.objects.exists()
    assert client.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0
