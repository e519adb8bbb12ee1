"""config.wsgi: a worker has its URL modules loaded before its first request."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_wsgi_module_loads_the_url_modules_and_views():
    probe = "import sys, config.wsgi; print(all(m in sys.modules for m in ('config.urls', 'prefs.api.urls', 'prefs.api.review')))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
