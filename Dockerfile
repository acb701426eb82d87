# The producer, the streaming job (Spark driver), the exporter and the init jobs of the
# compose stack: one image, `shopstream <command>`.
#
# Built in two stages: the first installs the lock (a compiler builds what has no wheel for
# the platform: cavro on arm64) and Maven (and a JDK) resolve the Spark connectors; only the
# virtualenv, the jars and a Java runtime reach the second. It runs as an unprivileged user.
FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jdk-headless maven build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH SHOPSTREAM_RUNTIME_DIR=/var/lib/shopstream
WORKDIR /app
COPY pyproject.toml README.md requirements.lock ./
# The dependencies from the lock, every file's hash checked; the project's own code after them, without dependencies.
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY core core
COPY schemas schemas
COPY producers producers
COPY streaming streaming
COPY db db
COPY monitoring monitoring
COPY infra infra
RUN pip install --no-cache-dir --no-deps .
# The Spark Kafka/Avro connectors, resolved at build time (infra/poms/spark.xml).
RUN shopstream fetch --only spark

FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/shopstream shopstream
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=shopstream:shopstream /var/lib/shopstream /var/lib/shopstream
# The checkpoint and archive volumes are mounted here: made now, so each volume starts out owned by the user.
RUN install -d -o shopstream -g shopstream /var/lib/shopstream/checkpoints /var/lib/shopstream/archive
# The driver starts without Spark's start-up archive here: `shopstream fetch` makes one per host (infra.runtime.jvm),
# and a container would make it again (about 30 s) on each first start.
ENV PATH=/opt/venv/bin:$PATH SHOPSTREAM_RUNTIME_DIR=/var/lib/shopstream SHOPSTREAM_SPARK_CLASS_ARCHIVE=false
USER shopstream
WORKDIR /var/lib/shopstream
ENTRYPOINT ["shopstream"]
CMD ["--help"]
