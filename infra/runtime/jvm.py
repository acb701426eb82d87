"""Java discovery and Maven fetches of the JVM pieces into .runtime/ (once)."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from core.exceptions import DependencyMissing, FetchError

log = logging.getLogger(__name__)

POMS = Path(__file__).resolve().parents[1] / "poms"

# Jars that pyspark already ships; the connectors need only what it lacks.
SPARK_CONNECTOR_JARS = (
    "spark-sql-kafka-0-10_2.13,spark-avro_2.13,spark-token-provider-kafka-0-10_2.13,kafka-clients,commons-pool2"
)


@dataclass(frozen=True)
class Artifact:
    """A folder under .runtime/jvm filled by one Maven invocation."""

    name: str
    pom: str
    goals: tuple[str, ...]

    def folder(self, runtime_dir: Path) -> Path:
        return runtime_dir / "jvm" / self.name


KAFKA = Artifact("kafka", "kafka.xml", ("dependency:copy-dependencies", "-DincludeScope=runtime"))
SPARK = Artifact(
    "spark",
    "spark.xml",
    ("dependency:copy-dependencies", "-DincludeScope=runtime", f"-DincludeArtifactIds={SPARK_CONNECTOR_JARS}"),
)
REGISTRY = Artifact("registry", "registry.xml", ("dependency:unpack@registry",))
ARTIFACTS = (KAFKA, SPARK, REGISTRY)


def pom_property(artifact: Artifact, prop: str) -> str:
    text = (POMS / artifact.pom).read_text()
    match = re.search(rf"<{re.escape(prop)}>([^<]+)</{re.escape(prop)}>", text)
    if not match:
        raise KeyError(prop)
    return match.group(1)


def ensure_fetched(artifact: Artifact, runtime_dir: Path) -> Path:
    """Run Maven for ``artifact`` unless its folder is complete. Returns the folder."""
    folder = artifact.folder(runtime_dir)
    marker = folder / ".fetched"
    pom = POMS / artifact.pom
    if marker.exists() and marker.read_text() == pom.read_text():
        return folder
    mvn = shutil.which("mvn")
    if mvn is None:
        raise DependencyMissing("Maven (mvn) is not installed: run `apt-get install maven` (or `make setup`)")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    log_file = runtime_dir / "logs" / f"fetch-{artifact.name}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log.info("fetching %s from Maven Central (first run only)", artifact.name)
    argv = [mvn, "-B", "-q", "-f", str(pom), *artifact.goals, f"-DoutputDirectory={folder}", f"-Dregistry.dir={folder}"]
    with open(log_file, "wb") as out:
        result = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, cwd=runtime_dir)
    if result.returncode != 0:
        text = log_file.read_text(errors="replace")
        cause = (
            "Maven Central is unreachable"
            if re.search(r"Unknown host|transfer failed|Connect", text)
            else "Maven failed"
        )
        raise FetchError(f"could not fetch {artifact.name}: {cause}; check the network or proxy, details in {log_file}")
    marker.write_text(pom.read_text())
    return folder


@dataclass(frozen=True)
class Java:
    path: str
    major: int


def _java_major(java: str) -> int | None:
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=20).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major


def find_java(minimum: int, purpose: str) -> Java:
    """The first Java >= ``minimum``: JAVA_HOME, then PATH, then /usr/lib/jvm (newest first)."""
    candidates: list[str] = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(os.path.join(os.environ["JAVA_HOME"], "bin", "java"))
    if shutil.which("java"):
        candidates.append(shutil.which("java"))
    jvm_root = Path("/usr/lib/jvm")
    if jvm_root.is_dir():
        candidates += [str(p / "bin" / "java") for p in sorted(jvm_root.iterdir(), reverse=True)]
    seen: list[int] = []
    for java in dict.fromkeys(candidates):
        if not os.access(java, os.X_OK):
            continue
        major = _java_major(java)
        if major is None:
            continue
        if major >= minimum:
            return Java(java, major)
        seen.append(major)
    if not seen:
        raise DependencyMissing(
            f"Java is missing ({purpose} needs Java {minimum}+): "
            f"install it, e.g. `apt-get install openjdk-17-jre-headless`, or set JAVA_HOME"
        )
    raise DependencyMissing(
        f"Java {minimum}+ is needed for {purpose}, found only Java {max(seen)}: "
        f"install a newer JDK and set JAVA_HOME to it"
    )


def spark_jars(runtime_dir: Path) -> list[str]:
    """The Spark connector jars (fetched on first use), with JAVA_HOME pointing at a Java that runs Spark."""
    java = find_java(17, "Spark")
    os.environ.setdefault("JAVA_HOME", str(Path(java.path).parents[1]))
    return sorted(str(p) for p in ensure_fetched(SPARK, runtime_dir).glob("*.jar"))
