"""Virtualenvs of their own for tools whose dependencies clash with ours (pgAdmin, the
Quix Streams peer): made on first use under .runtime/, reused after that."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from core.exceptions import DependencyMissing


def ensure_venv(folder: Path, requirement: str, if_failed: str) -> Path:
    """The venv's python, with ``requirement`` installed into it unless it already is. ``if_failed`` ends the
    one-line error: what the user can do instead."""
    python, marker = folder / "bin" / "python", folder / ".installed"
    if marker.exists() and marker.read_text() == requirement and python.exists():
        return python
    folder.parent.mkdir(parents=True, exist_ok=True)
    uv = Path(sys.executable).with_name("uv")  # in the development venv (`make setup`); the image has only pip
    if uv.exists():  # pgAdmin 4 installs in 7 s against pip's 62 s, nothing cached
        steps = [
            [str(uv), "venv", "--quiet", "--clear", "--python", sys.executable, str(folder)],
            [str(uv), "pip", "install", "--quiet", "--python", str(python), requirement],
        ]
    else:
        steps = [
            [sys.executable, "-m", "venv", "--clear", str(folder)],
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", requirement],
        ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise DependencyMissing(
                f"could not install {requirement} into {folder}: {tail[0]}; check that PyPI "
                f"is reachable, or {if_failed}"
            )
    marker.write_text(requirement)
    return python
