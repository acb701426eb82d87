"""The embedded runtime: real Kafka, Apicurio, PostgreSQL and Prometheus as local processes."""
