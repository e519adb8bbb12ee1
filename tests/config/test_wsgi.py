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


def test_what_the_wsgi_module_loaded_is_left_out_of_garbage_collection():
    probe = "import gc, config.wsgi; print(gc.get_freeze_count())"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    # Django, DRF and the URL modules alone are well over 50,000 objects.
    assert int(result.stdout.strip()) > 50_000
