"""The HTML report's run parameters read as a person would write them, not as Python reprs."""

from monitoring.charts import _as_written


def test_parameters_are_written_as_on_the_command_line():
    assert [_as_written(v) for v in (False, True, [], [[5000.0, 60.0], [20000.0, 60.0]], 5000.0, 0.002)] == [
        "no",
        "yes",
        "none",
        "5000:60,20000:60",
        "5,000",
        "0.002",
    ]
