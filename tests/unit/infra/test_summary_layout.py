"""`run`'s summary, as the CLI renders it, reads whole in an 80-column terminal and a wide one."""

import io

import pytest
from rich.console import Console

from infra.cli import pipeline

SUMMARY = {
    "produced": 150_123_456,
    "unique_events": 148_765_432,
    "stored": 146_188_001,
    "quarantined": 2_577_431,
    "duplicates_in_db": 0,
    "lost": 0,
    "throughput_eps": 4_987.4,
    "e2e_latency_ms": {"p95": 1_234.5},
    "late_events": 2_965_001,
    "injected_lateness_s": {"events": 3_001_234, "p50": 60.4, "max": 119.9},
    "stages_ms": {
        stage: {"avg": 12_345.6, "p95": 23_456.7, "max": 123_456.7}
        for stage in ("generate", "produce", "queue", "process", "db_write", "end_to_end")
    },
    "quality": {"schema": 1_234_567, "data_type": 345_678, "completeness": 456_789, "business_rules": 540_397},
    "quality_by_rule": {
        "schema": {"unknown_schema_id": 617_283, "not_avro_framed": 617_284},
        "data_type": {"undecodable_body": 345_678},
        "completeness": {"missing_required_field": 456_789},
        "business_rules": {"negative_quantity": 270_198, "order_total_mismatch": 270_199},
    },
    "manifest_quality": {"schema": 1_234_567, "data_type": 345_678, "completeness": 456_789, "business_rules": 540_397},
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
    values += [
        "123,456.7",
        "4,987",
        "1,234",
        "stream job signal_SIGKILL ×1",
        "sink retries: 4",
        "3,001,234 · median 60.4 s · max 119.9 s",
    ]
    for value in values:
        assert any(value in line for line in lines), f"{value!r} is not whole on one line at width {width}"


def render(monkeypatch, module, width: int, call) -> list[str]:
    out = io.StringIO()
    monkeypatch.setattr(module, "console", Console(file=out, width=width, color_system=None))
    call()
    text = out.getvalue()
    assert "…" not in text
    return text.splitlines()


def assert_whole(lines: list[str], values: list[str], width: int) -> None:
    for value in values:
        assert any(value in line for line in lines), f"{value!r} is not whole on one line at width {width}"


@pytest.mark.parametrize("width", [80, 120])
def test_status_reads_whole(monkeypatch, width, tmp_path):
    from core.settings import Settings
    from infra.cli import runtime
    from infra.runtime import stack
    from infra.runtime.base import ServiceStatus

    services = [
        ServiceStatus("postgres", True, True, "15.18", "127.0.0.1:5432/shopstream", 123456, True),
        ServiceStatus("registry", True, False, "3.3.3", "http://127.0.0.1:8081/apis/ccompat/v7", 234567, True),
        ServiceStatus("prometheus", False, False, "2.42.0+ds", "http://127.0.0.1:9090", None, True),
    ]
    monkeypatch.setattr(stack, "status", lambda cfg: services)
    lines = render(monkeypatch, runtime, width, lambda: runtime._print_status(Settings(runtime_dir=tmp_path)))
    assert max(len(line) for line in lines if "live graphs:" not in line) <= width
    assert_whole(
        lines,
        [
            "http://127.0.0.1:8081/apis/ccompat/v7",
            "127.0.0.1:5432/shopstream",
            "2.42.0+ds",
            "234567",
            "g0.expr=stage%3Ashopstream_stage_latency_seconds%3Ap95",
        ],
        width,
    )


@pytest.mark.parametrize("width", [80, 120])
def test_the_report_tables_read_whole(monkeypatch, width):
    from infra.cli import report as cli_report
    from monitoring.report import Report

    stages = {
        s: {"n": 10, "avg": 12_345.6, "p95": 23_456.7, "max": 123_456.7}
        for s in ("generate", "produce", "queue", "process", "db_write", "end_to_end")
    }
    r = Report(
        60,
        {
            "records": 150_123_456,
            "stored": 146_188_001,
            "quarantined": 2_577_431,
            "duplicates": 1_357_024,
            "late": 2_965_001,
            "batches": 123_456,
            "events_per_second": 4_987.4,
        },
        stages,
        {"schema": {"checked": 150_123_456, "failed": 1_234_567, "success_rate": 0.9918}},
        {"Simple Select": {"avg": 1.5, "p95": 2.5, "runs": 20}},
    )
    lines = render(monkeypatch, cli_report, width, lambda: cli_report.print_report(r, None))
    assert max(len(line) for line in lines) <= width
    assert_whole(
        lines,
        [
            "150,123,456",
            "146,188,001",
            "2,577,431",
            "1,357,024",
            "2,965,001",
            "123,456",
            "4,987",
            "23.457 s",
            "123.457 s",
            "end_to_end",
            "1,234,567",
            "99.18%",
        ],
        width,
    )
