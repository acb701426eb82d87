"""Which Java each JVM runs on (infra.runtime.jvm.find_java): Spark takes the newest it supports, the rest the first
that is new enough, and a JAVA_HOME the user set wins for both."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from infra.runtime import jvm


def _java(folder: Path, version: str) -> Path:
    """An executable that answers `java -version` the way a JDK does (on stderr)."""
    java = folder / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text(f"#!/bin/sh\necho 'openjdk version \"{version}\"' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IXUSR)
    return java


@pytest.fixture
def jdks(tmp_path, monkeypatch):
    """PATH's java is a 17; the JVM folder holds 17, 21, 25 and 26 (a Java newer than Spark supports)."""
    on_path = _java(tmp_path / "path-jdk", "17.0.15")
    root = tmp_path / "jvm"
    found = {v: _java(root / f"jdk-{v}", f"{v}.0.1") for v in ("17", "21", "25", "26")}
    monkeypatch.setattr(jvm, "JVM_ROOT", root)
    monkeypatch.setenv("PATH", f"{on_path.parent}{os.pathsep}/usr/bin{os.pathsep}/bin")
    monkeypatch.setattr(jvm, "_USER_JAVA_HOME", None)
    jvm._java_major.cache_clear()
    yield {"path": on_path, **found}
    jvm._java_major.cache_clear()


def test_spark_runs_on_the_newest_java_it_supports(jdks):
    assert jvm.spark_java() == jvm.Java(str(jdks["25"]), 25)


def test_the_other_services_take_the_first_java_new_enough_as_before(jdks):
    assert jvm.find_java(17, "Kafka") == jvm.Java(str(jdks["path"]), 17)
    assert jvm.find_java(21, "something newer") == jvm.Java(str(jdks["26"]), 26)  # the JVM folder, last name first


def test_a_java_home_the_user_set_wins(jdks, monkeypatch):
    monkeypatch.setattr(jvm, "_USER_JAVA_HOME", str(jdks["21"].parents[1]))
    assert jvm.spark_java().major == 21
    assert jvm.find_java(17, "Kafka").major == 21


def test_only_javas_too_old_is_one_line_naming_the_newest_found(jdks):
    with pytest.raises(jvm.DependencyMissing, match=r"Java 27\+ is needed for Spark, found only Java 26"):
        jvm.find_java(27, "Spark", newest=30)


def test_spark_s_java_home_is_not_taken_for_the_user_s_by_a_child(jdks, monkeypatch, tmp_path):
    # spark_jars sets JAVA_HOME for pyspark's launcher and names it; a child process that inherits both (a job the
    # tests start after a local session) still starts Kafka on the Java the user would get.
    monkeypatch.setattr(jvm, "ensure_fetched", lambda artifact, runtime_dir: tmp_path)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.delenv(jvm.SPARK_JAVA_HOME_VARIABLE, raising=False)
    jvm.spark_jars(tmp_path)
    assert os.environ["JAVA_HOME"] == str(jdks["25"].parents[1])
    code = "from infra.runtime import jvm; print(jvm._USER_JAVA_HOME)"
    repo = Path(__file__).resolve().parents[3]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo).stdout
    assert out.strip() == "None"
