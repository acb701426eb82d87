import pytest
from pydantic import ValidationError

from producers.options import ProduceOptions
from producers.pacing import Pacer


def test_a_steady_rate_is_due_linearly_and_an_unpaced_producer_never_waits():
    assert Pacer(1000).due(2.5) == 2500
    assert Pacer(0).pause(10**9, 0.001) == 0


def test_bursts_send_three_times_the_rate_for_two_seconds_then_rest_for_the_same_average():
    pacer = Pacer(1000, burst=True)
    assert pacer.due(2.0) == 6000
    assert pacer.due(5.9) == 6000  # quiet
    assert pacer.due(6.0) == pacer.due(0) + 6000 == Pacer(1000).due(6.0)


@pytest.mark.parametrize("sent,pause", [(500, 0.0), (999, 0.0005), (1000, 0.001), (1010, 0.005)])
def test_ahead_of_schedule_it_pauses_briefly_so_deliveries_keep_being_polled(sent, pause):
    assert Pacer(1000).pause(sent, 0.999) == pytest.approx(pause, abs=1e-9)


def test_a_step_load_holds_each_rate_for_its_seconds_then_the_last_one():
    pacer = Pacer(1, steps=[(5000, 60), (20000, 60), (5000, 60)])
    assert pacer.due(30) == 150_000
    assert pacer.due(90) == 300_000 + 600_000
    assert pacer.due(180) == 300_000 + 1_200_000 + 300_000
    assert pacer.due(181) == pacer.due(180) + 5000
    assert [pacer.rate_at(t) for t in (0, 59.9, 60, 119.9, 120, 500)] == [5000, 5000, 20000, 20000, 5000, 5000]


def test_a_step_load_is_given_as_rate_colon_seconds_and_lasts_their_sum_unless_told():
    assert ProduceOptions(steps="5000:60, 20000:30").steps == [(5000, 60), (20000, 30)]
    assert ProduceOptions(steps="5000:60,20000:30").duration_s == 90
    assert ProduceOptions(steps="5000:60", duration_s=10).duration_s == 10
    with pytest.raises(ValidationError, match="RATE:SECONDS"):
        ProduceOptions(steps="5000")


def test_a_run_is_bounded_unless_it_is_told_to_run_forever():
    with pytest.raises(ValidationError, match="--forever"):
        ProduceOptions()
    assert ProduceOptions(forever=True).duration_s is None
    for bound in ({"count": 10}, {"duration_s": 5}, {"steps": "5000:60"}):
        with pytest.raises(ValidationError, match="runs until stopped"):
            ProduceOptions(forever=True, **bound)
