"""Orchestration: what runs the stages together (a run's lifecycle, replay, the job's supervisor, the warm-up's
samples). It stands on ``infra.runtime`` (the local services) and is used by the commands, benchmarks and chaos."""
