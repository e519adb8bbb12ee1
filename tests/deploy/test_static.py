"""Production static files: collected at build time (as the Dockerfile does), served by
WhiteNoise under hashed names with far-future caching when STATIC_MANIFEST=True."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_PROBE = """
import json, re, django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.test import Client
page = Client().get("/login/")
urls = re.findall(r'/static/[^"]+', page.content.decode())
asset = Client().get(urls[0])
print(json.dumps({"page": page.status_code, "urls": urls, "asset": asset.status_code,
                  "cache": asset.get("Cache-Control", "")}))
"""


def test_collected_hashed_static_files_are_served_with_long_caching(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "PREFLOOP_", "TEST_DATABASE", "STATIC_"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "ALLOWED_HOSTS": "testserver",
            "PREFLOOP_VAR_DIR": str(tmp_path / "var"),
            "STATIC_ROOT": str(tmp_path / "static"),
            "STATIC_MANIFEST": "True",
        }
    )
    collect = subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=300)
    assert collect.returncode == 0, collect.stderr[-3000:]
    assert (tmp_path / "static" / "staticfiles.json").is_file()

    done = subprocess.run([sys.executable, "-c", _PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["page"] == 200 and answer["urls"]
    # css/prefloop.css -> css/prefloop.<12 hex>.css: a new release gets new URLs, so old ones can
    # be cached for a year.
    assert all(any(len(part) == 12 for part in Path(url).name.split(".")) for url in answer["urls"])
    assert answer["asset"] == 200
    assert "max-age=315360000" in answer["cache"] and "immutable" in answer["cache"]
