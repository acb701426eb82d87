"""The benchmark report's rendering: every table from the figures, ratios computed right."""

from infra.bench.e2e import BenchReport, LevelResult, load_report


def _level(system: str, rate: float, p95_ms: float, sustainable: bool = True, **extra) -> LevelResult:
    return LevelResult(
        system=system,
        target_rate=rate,
        input_rate=rate,
        output_rate=rate * 0.95,
        success_rate=1.0,
        drain_s=1.0,
        sustainable=sustainable,
        e2e_ms={"p50": p95_ms / 2, "p95": p95_ms, "p99": p95_ms, "max": p95_ms},
        stages_ms={"end_to_end": {"avg": p95_ms / 2, "p95": p95_ms, "max": p95_ms}},
        resources={"consumer (x)": {"cpu_percent": 50.0, "peak_rss_mb": 100.0}},
        produced=int(rate),
        lost=0,
        duplicates_in_db=0,
        **extra,
    )


def report() -> BenchReport:
    r = BenchReport("2 cores", "shopstream bench e2e", "method")
    r.levels = [
        _level("shopstream", 1000, 1000),
        _level("shopstream", 5000, 900),
        _level("quix", 1000, 800),
        _level("quix", 5000, 1200, sustainable=False),
        _level("shopstream", 5000, 700, spark_cores=1, scaling=True),
    ]
    r.max_sustainable = {"shopstream": (5000.0, 900.0), "quix": (1000.0, 800.0)}
    return r


def test_ratios_compare_max_rates_and_p95_only_where_both_sustain():
    md = report().markdown()
    row = next(line for line in md.splitlines() if line.startswith("| quix | 1,000/s"))
    assert "5.00×" in row  # 5,000 / 1,000
    assert "1,000/s: 1.25×" in row  # 1000 ms / 800 ms
    assert "5,000/s" not in row.split("|")[4]  # quix did not sustain 5,000/s


def test_scaling_rows_stay_out_of_the_main_table(tmp_path):
    md = report().markdown()
    main = md.split("## Maximum sustainable")[0]
    assert main.count("| shopstream | 5,000 |") == 1
    assert "1 Spark core(s)" in md.split("## Scaling")[1]


def test_a_report_round_trips_through_its_json(tmp_path):
    (tmp_path / "bench.json").write_text(report().to_json())
    assert load_report(tmp_path / "bench.json").markdown() == report().markdown()


def test_the_cold_start_p95_and_the_cpu_per_event_are_shown():
    r = report()
    r.levels[0].cold_start_ms = {"p50": 900.0, "p95": 2500.0, "p99": 3000.0, "max": 3100.0}
    md = r.markdown()
    row = next(line for line in md.splitlines() if line.startswith("| shopstream | 1,000 |"))
    assert "| 2.50s |" in row  # its cold start
    quix = next(line for line in md.splitlines() if line.startswith("| quix | 1,000 |"))
    assert "| - |" in quix  # none measured (an older report): a dash, no error
    cpu = md.split("## CPU and memory per component")[1]
    assert "| shopstream | 5,000 | consumer (x) | 50.0 | 105 | 100.0 |" in cpu  # 0.5 core ÷ 4,750/s committed
