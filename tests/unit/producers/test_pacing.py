import pytest

from producers.pacing import Pacer


def test_a_steady_rate_is_due_linearly_and_an_unpaced_producer_never_waits():
    assert Pacer(1000).due(2.5) == 2500
    assert Pacer(0).pause(10**9, 0.001) == 0


def test_bursts_send_three_times_the_rate_for_two_seconds_then_rest_for_the_same_average():
    pacer = Pacer(1000, burst=True)
    assert pacer.due(2.0) == 6000
    assert pacer.due(5.9) == 6000        # quiet
    assert pacer.due(6.0) == pacer.due(0) + 6000 == Pacer(1000).due(6.0)


@pytest.mark.parametrize("sent,pause", [(500, 0.0), (999, 0.0005), (1000, 0.001), (1010, 0.005)])
def test_ahead_of_schedule_it_pauses_briefly_so_deliveries_keep_being_polled(sent, pause):
    assert Pacer(1000).pause(sent, 0.999) == pytest.approx(pause, abs=1e-9)
