"""Java discovery and Maven fetches of the JVM pieces into .runtime/ (once)."""

from __future__ import annotations

import functools
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


#: Where Debian (and the Temurin packages) install JDKs.
JVM_ROOT = Path("/usr/lib/jvm")


@functools.cache
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


#: spark_jars points JAVA_HOME at Spark's Java for pyspark's launcher, and names it here too, so that this process and
#: its children still tell the user's JAVA_HOME from that one: the services they start (Kafka, the registry) choose
#: their Java from the user's.
SPARK_JAVA_HOME_VARIABLE = "SPARK_JAVA_HOME_CHOSEN"
_USER_JAVA_HOME = (
    os.environ.get("JAVA_HOME") if os.environ.get("JAVA_HOME") != os.environ.get(SPARK_JAVA_HOME_VARIABLE) else None
)

#: Spark 4.2 runs on Java 17, 21 and 25. Its JVMs take the newest of those installed: on Java 25 the stream job used
#: 0.92x the CPU per event of Java 17 at 10,000 ev/s, in two 300 s pairs alternating
#: (bench-results/experiments/2026-12-06-jit/). A JAVA_HOME the user set still wins.
SPARK_JAVA = (17, 25)


def find_java(minimum: int, purpose: str, newest: int | None = None) -> Java:
    """The Java for ``purpose``: the user's JAVA_HOME when it is ``minimum`` or newer; else the first such Java on
    PATH, then in JVM_ROOT (by name, last first). With ``newest``, the newest Java from ``minimum`` to ``newest`` on
    PATH or in JVM_ROOT instead (then any ``minimum`` or newer)."""
    if _USER_JAVA_HOME:
        java = os.path.join(_USER_JAVA_HOME, "bin", "java")
        major = _java_major(java) if os.access(java, os.X_OK) else None
        if major is not None and major >= minimum:
            return Java(java, major)
    candidates: list[str] = []
    if shutil.which("java"):
        candidates.append(shutil.which("java"))
    if JVM_ROOT.is_dir():
        candidates += [str(p / "bin" / "java") for p in sorted(JVM_ROOT.iterdir(), reverse=True)]
    found: list[Java] = []
    for java in dict.fromkeys(candidates):
        if os.access(java, os.X_OK) and (major := _java_major(java)) is not None:
            found.append(Java(java, major))
            if newest is None and major >= minimum:
                return found[-1]
    supported = [j for j in found if minimum <= j.major <= (newest or 0)]
    if supported:
        return max(supported, key=lambda j: j.major)  # max keeps the first of equals: PATH's before JVM_ROOT's
    if usable := [j for j in found if j.major >= minimum]:
        return usable[0]
    if not found:
        raise DependencyMissing(
            f"Java is missing ({purpose} needs Java {minimum}+): "
            f"install it, e.g. `apt-get install openjdk-17-jre-headless`, or set JAVA_HOME"
        )
    raise DependencyMissing(
        f"Java {minimum}+ is needed for {purpose}, found only Java {max(j.major for j in found)}: "
        f"install a newer JDK and set JAVA_HOME to it"
    )


def spark_java() -> Java:
    """The Java that Spark's JVMs run on (the driver, a local session's executors, a standalone cluster)."""
    return find_java(SPARK_JAVA[0], "Spark", newest=SPARK_JAVA[1])


def spark_jars(runtime_dir: Path) -> list[str]:
    """The Spark connector jars (fetched on first use), with JAVA_HOME pointing at a Java that runs Spark."""
    java = spark_java()
    home = str(Path(java.path).parents[1])
    os.environ["JAVA_HOME"] = os.environ[SPARK_JAVA_HOME_VARIABLE] = home  # what pyspark's launcher starts Java with
    return sorted(str(p) for p in ensure_fetched(SPARK, runtime_dir).glob("*.jar"))


#: The workload a start-up archive is made from: a local session and a small aggregation, what every driver loads
#: before its first batch. spark_class_archive runs it with the archive's output option; the JVM writes the archive
#: when it exits.
_ARCHIVE_WORKLOAD = """
from pyspark.sql import SparkSession
spark = SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false").getOrCreate()
spark.range(100000).selectExpr("id % 7 AS k", "id").groupBy("k").count().collect()
gateway = spark.sparkContext._gateway
spark.stop()
gateway.shutdown()
gateway.proc.stdin.close()  # the JVM exits when its stdin closes, and writes the archive on its way out
gateway.proc.wait(240)
"""

#: From Java 25 the archive is an ahead-of-time cache (JEP 483: classes loaded and linked, made in one step by
#: JEP 514's -XX:AOTCacheOutput), before it a dynamic class-data-sharing archive (AppCDS, -XX:ArchiveClassesAtExit).
AOT_CACHE_JAVA = 25


def spark_class_archive(runtime_dir: Path) -> Path | None:
    """Spark's driver classes archived for the JVM to map instead of loading, linking and verifying them: a local
    session ready in 6.5-7.1 s instead of 11.1-12.6 s on Java 25's AOT cache (7.0-7.6 s with a CDS archive),
    A/B'd 3 x 3 alternating (bench-results/experiments/2026-12-06-aot-cache/). Made once per Java and pyspark
    (about 30 s) under .runtime/jvm/spark-cds/, by `shopstream fetch` or the first driver; None when it cannot be
    made (the driver then starts as before). The JVM itself ignores an archive that no longer matches it or the
    class path (streaming.job.class_archive_options silences its warning)."""
    import fcntl
    import hashlib
    import sys

    import pyspark

    from streaming.job import JIT_HUGE_METHODS

    java = spark_java()
    jars = sorted(p.name for p in (Path(pyspark.__file__).parent / "jars").glob("*.jar"))
    key = hashlib.sha1("\n".join([java.path, str(java.major), pyspark.__version__, *jars]).encode()).hexdigest()[:12]
    folder = runtime_dir / "jvm" / "spark-cds"
    archive = folder / f"{key}.{'aot' if java.major >= AOT_CACHE_JAVA else 'jsa'}"
    if archive.exists():
        return archive
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one maker; the others wait for its archive
        if archive.exists():
            return archive
        for stale in folder.glob("*.tmp*"):  # a JVM that finished its archive after its maker gave up on it
            stale.unlink(missing_ok=True)
        partial = folder / f"{key}.{os.getpid()}.tmp"
        log.info("making Spark's start-up archive %s (once, about 30 s)", archive)
        if archive.suffix == ".aot":  # the JVM records at exit, then a child JVM assembles the cache
            output = f"-XX:AOTCacheOutput={partial} -Xlog:aot=off -Xlog:cds=off"
        else:
            output = f"-XX:ArchiveClassesAtExit={partial} -Xlog:cds=off -Xlog:cds+dynamic=off"
        env = {
            **os.environ,
            "JAVA_HOME": str(Path(java.path).parents[1]),
            "PYSPARK_SUBMIT_ARGS": f'--driver-java-options "{JIT_HUGE_METHODS} {output}" pyspark-shell',
        }
        with open(folder / "make.log", "w") as out:
            try:
                done = subprocess.run(
                    [sys.executable, "-c", _ARCHIVE_WORKLOAD], env=env, stdout=out, stderr=out, timeout=300
                )
            except subprocess.TimeoutExpired:
                done = None
        if done is None or done.returncode != 0 or not partial.exists():
            for made in folder.glob(f"{partial.name}*"):
                made.unlink(missing_ok=True)
            log.warning("could not make Spark's start-up archive (see %s): the driver starts without it", out.name)
            return None
        partial.replace(archive)
    return archive
