"""The services' watchdog starts a local service that died, by itself, and counts it."""

from __future__ import annotations

import os
import signal
import threading
import time

from infra.runtime import watchdog
from infra.runtime.services.prometheus import Prometheus
from tests.fixtures.waiting import wait_for


def test_a_killed_service_is_started_again_by_the_watchdog(running_stack):
    settings = running_stack.model_copy(update={"watchdog_interval_s": 0.5})
    prometheus = Prometheus(settings)
    stop = threading.Event()
    dog = threading.Thread(target=watchdog.watch, args=(settings, stop), name="watchdog")
    dog.start()
    try:
        killed, killed_at = prometheus.process.pid(), time.time()
        os.kill(killed, signal.SIGKILL)

        def restarted():
            """This watchdog's record of the restart (not one a thread slow to start has yet to replace: the
            record of an earlier session stays in the runtime folder until the new watchdog's first save)."""
            record = watchdog.restarts(settings).get("prometheus")
            return record if record and record.restarts and (record.detected_at or 0) >= killed_at else None

        record = wait_for(restarted, 60, "the watchdog to start Prometheus again")
        assert record.detected_at is not None
        assert prometheus.process.pid() not in (None, killed) and prometheus.healthy()
        assert (record.restarts, record.last_error) == (1, None)
        assert {name: r.restarts for name, r in watchdog.restarts(settings).items() if r.restarts} == {
            "prometheus": 1
        }, "nothing else was touched"
    finally:
        stop.set()
        dog.join(30)
    assert not dog.is_alive()
