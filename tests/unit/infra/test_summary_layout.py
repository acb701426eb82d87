"""`run`'s summary, as the CLI renders it, reads whole in an 80-column terminal and a wide one."""

import io

import pytest
from rich.console import Console

from infra.cli import pipeline

SUMMARY = {
    "produced": 150_123_456, "unique_events": 148_765_432, "stored": 146_188_001, "quarantined": 2_577_431,
    "duplicates_in_db": 0, "lost": 0, "throughput_eps": 4_987.4, "e2e_latency_ms": {"p95": 1_234.5},
    "late_events": 2_965_001,
    "stages_ms": {stage: {"avg": 12_345.6, "p95": 23_456.7, "max": 123_456.7}
                  for stage in ("generate", "produce", "queue", "process", "db_write", "end_to_end")},
    "quality": {"schema": 1_234_567, "data_type": 345_678, "completeness": 456_789, "business_rules": 540_397},
    "quality_by_rule": {
        "schema": {"unknown_schema_id": 617_283, "not_avro_framed": 617_284},
        "data_type": {"undecodable_body": 345_678},
        "completeness": {"missing_required_field": 456_789},
        "business_rules": {"negative_quantity": 270_198, "order_total_mismatch": 270_199},
    },
    "manifest_quality": {"schema": 1_234_567, "data_type": 345_678, "completeness": 456_789,
                         "business_rules": 540_397},
    "restarts": {"stream": {"signal_SIGKILL": 1}, "services": {"postgres": 1}, "sink_retries": 4},
}


@pytest.mark.parametrize("width", [80, 120])
def test_every_value_is_whole_on_one_line(monkeypatch, width):
    out = io.StringIO()
    monkeypatch.setattr(pipeline, "console", Console(file=out, width=width, color_system=None))
    pipeline.print_summary(SUMMARY)
    text = out.getvalue()
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    lines = text.splitlines()
    values = [f"{SUMMARY[k]:,}" for k in ("produced", "unique_events", "stored", "quarantined", "late_events")]
    values += [f"{n:,}" for n in SUMMARY["quality"].values()]
    values += [f"{rule} {n:,}" for rules in SUMMARY["quality_by_rule"].values() for rule, n in rules.items()]
    values += ["123,456.7", "4,987", "1,234", "stream job signal_SIGKILL ×1", "sink retries: 4"]
    for value in values:
        assert any(value in line for line in lines), f"{value!r} is not whole on one line at width {width}"
