"""The bottom layer: settings, errors, metric declarations and the Kafka, PostgreSQL and
ledger helpers that every stage shares. It imports no other package of ours."""
