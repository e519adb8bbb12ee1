"""The layering rules (the engine without Django, see docs/engine.md), checked in fresh interpreters."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_tuning_engine_never_imports_django():
    offenders = []
    for path in sorted((ROOT / "tuning" / "engine").rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            stripped = line.strip()
            if stripped.startswith(("import django", "from django")):
                offenders.append(f"{path.relative_to(ROOT)}:{number}")
    assert offenders == []


def test_importing_the_web_app_does_not_import_torch():
    result = _run(
        "import os, sys\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings')\n"
        "import django; django.setup()\n"
        "import config.urls\n"
        "from django.urls import get_resolver; get_resolver().url_patterns\n"
        "print('torch' in sys.modules)\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
