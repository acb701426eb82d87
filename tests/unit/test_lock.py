"""The lock: uv.lock (the resolution, every file by name and hash) and the two install lists exported from it,
requirements.lock (the image) and requirements-dev.lock (`make setup`). Checked offline."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCK = tomllib.loads((ROOT / "uv.lock").read_text())
#: Packages without a wheel for a platform, built by the image's build stage: cavro (Cython, x86_64 wheels only)
#: with its compiler, pyspark (a pure-Python sdist, no compiler needed).
BUILT_FROM_SOURCE = {"cavro": {"aarch64"}, "pyspark": {"x86_64", "aarch64"}}
EXPORT = ["export", "--frozen", "--no-emit-project", "--no-header", "--format", "requirements-txt", "--offline", "-q"]


def uv(*args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("uv", path=str(Path(sys.executable).parent))
    if binary is None:
        pytest.fail("uv is missing from the virtualenv: run `make setup` (it comes with the test extra)")
    return subprocess.run([binary, *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_the_lock_matches_pyproject():
    """`uv lock --check`, offline: a dependency changed in pyproject.toml without `make lock` fails here."""
    out = uv("lock", "--check", "--offline")
    assert out.returncode == 0, f"uv.lock is stale: run `make lock`\n{out.stderr}"


@pytest.mark.parametrize("name,extras", [("requirements.lock", []), ("requirements-dev.lock", ["--all-extras"])])
def test_the_install_lists_are_exported_from_the_lock(name, extras):
    out = uv(*EXPORT, *extras)
    assert out.returncode == 0, out.stderr
    assert out.stdout == (ROOT / name).read_text(), f"{name} is not uv.lock's export: run `make lock`"


def test_every_requirement_is_pinned_with_hashes():
    for name in ("requirements.lock", "requirements-dev.lock"):
        entries = re.split(r"\n(?=\S)", (ROOT / name).read_text().strip())
        for entry in entries:
            if entry.startswith("#"):
                continue
            assert re.match(r"^[A-Za-z0-9._-]+==\S+", entry), entry[:80]
            assert "--hash=sha256:" in entry, f"{name}: {entry.splitlines()[0][:60]} has no hash"


def wheel_fits(filename: str, machine: str) -> bool:
    """Whether a wheel installs on CPython 3.11, glibc Linux on ``machine`` (its file name's tags)."""
    python, abi, platform = filename[: -len(".whl")].split("-")[-3:]
    pythons, platforms = python.split("."), platform.split(".")
    stable = abi == "abi3" and any(re.fullmatch(r"cp3\d+", p) and int(p[3:]) <= 11 for p in pythons)
    fits_python = stable or any(p in ("py3", "cp311") for p in pythons)
    fits_platform = "any" in platforms or any(
        p == f"linux_{machine}" or (p.startswith("manylinux") and p.endswith(machine)) for p in platforms
    )
    return fits_python and fits_platform


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_every_locked_package_has_a_wheel_or_is_built_by_the_image(machine):
    """The arm64 check (Apple Silicon, Graviton), read from the lock offline: a package with no wheel for the
    machine is built in the image's build stage, which has a compiler."""
    dockerfile = (ROOT / "Dockerfile").read_text().split("\nFROM ")[1]  # the build stage
    assert "build-essential" in dockerfile, "the build stage has no compiler"
    missing = {
        package["name"]
        for package in LOCK["package"]
        if package["name"] != "shopstream"
        and not any(wheel_fits(w["url"].rsplit("/", 1)[1], machine) for w in package.get("wheels", []))
    }
    expected = {name for name, machines in BUILT_FROM_SOURCE.items() if machine in machines}
    assert missing == expected
    for name in missing:
        (package,) = [p for p in LOCK["package"] if p["name"] == name]
        assert "sdist" in package, f"{name} has neither a {machine} wheel nor a source archive"


def test_the_lock_covers_linux_on_both_machines_with_the_images_python():
    markers = " ".join(LOCK.get("supported-markers", []))
    assert "x86_64" in markers and "aarch64" in markers
    python = re.search(r"FROM python:(\d+\.\d+)", (ROOT / "Dockerfile").read_text()).group(1)
    assert f"python_version == '{python}'" in (ROOT / "pyproject.toml").read_text()


def test_the_image_and_make_setup_install_from_the_lock():
    dockerfile, makefile = (ROOT / "Dockerfile").read_text(), (ROOT / "Makefile").read_text()
    assert "--require-hashes -r requirements.lock" in dockerfile and "--no-deps ." in dockerfile
    assert "--require-hashes -r requirements-dev.lock" in makefile and "--no-deps -e ." in makefile
