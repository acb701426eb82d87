# The producer, the streaming job (Spark driver), the exporter and the init jobs of the
# compose stack: one image, `shopstream <command>`.
FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless maven \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY infra infra
COPY producers producers
COPY streaming streaming
COPY schemas schemas
COPY db db
COPY monitoring monitoring
RUN pip install --no-cache-dir .
ENV SHOPSTREAM_RUNTIME_DIR=/var/lib/shopstream
# The Spark Kafka/Avro connectors, resolved at build time (infra/poms/spark.xml).
RUN shopstream fetch --only spark
ENTRYPOINT ["shopstream"]
CMD ["--help"]
