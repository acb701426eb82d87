"""promtool's own checks on our Prometheus config and rules, and the rule unit tests."""

import shutil
import subprocess
from pathlib import Path

import pytest

PROMETHEUS = Path(__file__).resolve().parents[3] / "monitoring" / "prometheus"


@pytest.fixture(scope="module")
def promtool():
    path = shutil.which("promtool")
    assert path, "promtool is missing: `make setup` installs Debian's prometheus package"
    return path


def run(promtool, *args, cwd=PROMETHEUS):
    out = subprocess.run([promtool, *args], capture_output=True, text=True, cwd=cwd, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout + out.stderr


def test_the_config_is_valid(promtool):
    assert "SUCCESS" in run(promtool, "check", "config", "prometheus.yml")


def test_the_rules_are_valid(promtool):
    out = run(promtool, "check", "rules", *sorted(str(p) for p in (PROMETHEUS / "rules").glob("*.yml")))
    assert "SUCCESS" in out


def test_the_alert_unit_tests_pass(promtool):
    assert "SUCCESS" in run(promtool, "test", "rules", "alerts_test.yml", cwd=PROMETHEUS / "tests")
