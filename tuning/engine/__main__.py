"""Entry point of ``python -m tuning.engine``; see tuning/engine/cli.py."""

from __future__ import annotations

import sys

from tuning.engine.cli import main

sys.exit(main())
