"""Dead-letter re-drive against the real services (issue 16): a cause fixed through its setting (the quantity
limit) stores that rule's dead letters once and resolves their quarantine rows; a rule still broken fails again
with no second row, no new dead letter and no loop."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import producers
from core.kafka import log_end_offsets
from core.settings import settings_env
from infra.orchestration.harness import PipelineRun
from infra.orchestration.processes import StreamProcess, job_metrics
from producers.options import FaultRatios, ProduceOptions
from tests.fixtures.database import scalar
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.slow

STORED = "SELECT (SELECT count(*) FROM clickstream_events) + (SELECT count(*) FROM orders)"


def shopstream(settings, *args) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "infra", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **settings_env(settings), "COLUMNS": "200"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def rule_count(settings, rule: str, where: str = "true") -> int:
    return scalar(settings, f"SELECT count(*) FROM quarantine WHERE rule = '{rule}' AND {where}")


def test_a_relaxed_rule_stores_its_dead_letters_once_and_a_broken_one_fails_again_without_a_loop(pipeline_env):
    settings, options = pipeline_env
    dead_letter_topic = [settings.topic("dead-letter")]
    stream = StreamProcess(settings, options)
    stream.start()
    try:
        faults = FaultRatios(schema=0, data_type=0, completeness=0, business_rules=0.2)
        manifest = producers.run(
            settings, ProduceOptions(rate=0, count=1500, faults=faults, duplicate_ratio=0)
        ).manifest
        PipelineRun(settings, stream).drain()
    finally:
        assert stream.stop() == 0
    over = manifest.quarantine_expected()["business_rules"].get("quantity_over_limit", 0)
    bad_price = manifest.quarantine_expected()["business_rules"].get("non_positive_price", 0)
    assert over > 0 and bad_price > 0
    assert rule_count(settings, "quantity_over_limit") == over
    stored, quarantined = scalar(settings, STORED), scalar(settings, "SELECT count(*) FROM quarantine")
    letters = log_end_offsets(settings, dead_letter_topic)

    listed = shopstream(settings, "dead-letter", "list")
    assert "quantity_over_limit" in listed and "non_positive_price" in listed

    # The business relaxes the limit (its setting), and the job runs with it.
    relaxed = StreamProcess(settings, options.model_copy(update={"quantity_limit": 1000}))
    relaxed.start()
    try:
        out = shopstream(settings, "dead-letter", "redrive", "--rule", "quantity_over_limit", "--wait", "90")
        assert f"outcome: {over:,} stored (quarantine row resolved), 0 failing again, 0 not judged yet" in out, out
        out = shopstream(settings, "dead-letter", "redrive", "--rule", "non_positive_price", "--wait", "90")
        assert f"outcome: 0 stored (quarantine row resolved), {bad_price:,} failing again" in out, out
        again = shopstream(settings, "dead-letter", "redrive", "--rule", "quantity_over_limit", "--dry-run")
        assert f"0 dead letters would be re-driven ({over:,} selected are resolved already)" in again, again
        wait_for(
            lambda: job_metrics(settings).get("shopstream_dead_letter_redriven_total") == over + bad_price,
            30,
            "the job's re-drive counter",
        )
    finally:
        assert relaxed.stop() == 0

    assert scalar(settings, STORED) == stored + over, "each re-driven record that passes is stored once"
    assert scalar(settings, "SELECT count(*) FROM quarantine") == quarantined, "no quarantine row is added or deleted"
    assert rule_count(settings, "quantity_over_limit", "resolved_at IS NOT NULL AND resolved_by IS NOT NULL") == over
    assert (
        rule_count(
            settings,
            "non_positive_price",
            "resolved_at IS NULL AND redrive_attempts = 1 AND last_redrive_rule = 'non_positive_price'",
        )
        == bad_price
    )
    assert log_end_offsets(settings, dead_letter_topic) == letters, "no new dead letter: no loop"
    # Each source record once: stored, or quarantined and not resolved.
    unresolved = scalar(settings, "SELECT count(*) FROM quarantine WHERE resolved_at IS NULL")
    assert scalar(settings, STORED) + unresolved == manifest.unique_events
