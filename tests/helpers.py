"""Helpers shared by unit and integration tests."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

FLEET_BIN = str(Path(sys.executable).parent / "fleet")


def run_fleet(
    args: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the installed `fleet` console script and capture its output."""
    return subprocess.run(
        [FLEET_BIN, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
