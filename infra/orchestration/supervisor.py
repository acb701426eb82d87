"""A parent that restarts the stream job's process when it dies, as systemd or
Kubernetes would: after a SIGKILL, an OOM kill or a crash, the job starts again from its
checkpoint, with backoff; so does a dependency that was away when it started (exit 75,
TEMPFAIL_EXIT). A clean exit (0) or a permanent error (2, a misconfiguration the job
named) ends the supervisor too: restarting would only repeat it."""

from __future__ import annotations

import ctypes
import json
import logging
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable

from core.exceptions import FENCED_EXIT, TEMPFAIL_EXIT
from core.retry import JOB_PROCESS, STEADY_AFTER_S

log = logging.getLogger(__name__)

#: {reason: restarts so far}, handed to each new process so its counter carries on.
RESTARTS_ENV = "SHOPSTREAM_STREAM_RESTARTS"
#: When the previous process was seen to end (Unix time), for the job's failure timestamp.
LAST_FAILURE_ENV = "SHOPSTREAM_STREAM_LAST_FAILURE"
#: Which of a supervised pair of drivers (`stream --standby`) a process is: 0 or 1 (its warm-up topics' names).
DRIVER_SLOT_ENV = "SHOPSTREAM_STREAM_DRIVER_SLOT"
PERMANENT_EXIT = 2


def exit_reason(code: int) -> str:
    if code == TEMPFAIL_EXIT:
        return "dependency_unavailable"
    if code == FENCED_EXIT:
        return "fenced"
    return f"signal_{signal.Signals(-code).name}" if code < 0 else f"exit_{code}"


def die_with_parent(sig: int = signal.SIGKILL):
    """A preexec_fn: the kernel sends the child ``sig`` when its parent dies (PR_SET_PDEATHSIG)."""

    def preexec() -> None:  # in the child, before exec
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, sig)

    return preexec


def _wait(child: subprocess.Popen, stop: threading.Event) -> int:
    """The child's exit code; once ``stop`` is set (by a signal or by another supervisor of the pair), the child
    gets SIGTERM: it finishes its batch and exits."""
    asked = False
    while True:
        try:
            return child.wait(timeout=0.1)  # a pair's two drivers get their SIGTERM within 0.1 s of each other
        except subprocess.TimeoutExpired:
            if stop.is_set() and not asked:
                child.send_signal(signal.SIGTERM)
                asked = True


#: How long the second driver of a pair waits for the first to have decided its role before it starts anyway (the
#: lease decides between them either way).
PAIR_STAGGER_MAX_S = 60.0


def supervise_pair(
    argv: list[str],
    env: dict[str, str],
    backoff_max_s: float | None = None,
    decided: Callable[[int], bool] = lambda pid: True,
) -> int:
    """Two supervised drivers of one pipeline (`stream --standby`): each takes the lease or waits warm for it
    (streaming.lease), and each is restarted when it dies, as a standby if the other took over meanwhile. The
    second starts once ``decided(pid)`` says the first has taken its role (or that process ended), so the first
    becomes the active one. Both end on SIGTERM or Ctrl-C, or when either ends cleanly (0) or with a
    misconfiguration (2)."""
    stop = threading.Event()
    codes: list[int] = []
    first: list[subprocess.Popen] = []

    def first_decided() -> bool:
        return bool(first) and (first[0].poll() is not None or decided(first[0].pid))

    def one(slot: int) -> None:
        if slot:
            deadline = time.monotonic() + PAIR_STAGGER_MAX_S
            while not first_decided() and time.monotonic() < deadline:
                if stop.wait(0.05):
                    return
        on_start = first.append if slot == 0 else None
        codes.append(supervise(argv, {**env, DRIVER_SLOT_ENV: str(slot)}, stop, backoff_max_s, on_start))
        stop.set()

    def on_signal(signum, frame):
        stop.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        threads = [threading.Thread(target=one, args=(slot,), name=f"driver-{slot}") for slot in (0, 1)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(0.2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return max(codes, default=0)


def supervise(
    argv: list[str],
    env: dict[str, str],
    stop: threading.Event | None = None,
    backoff_max_s: float | None = None,
    on_start: Callable[[subprocess.Popen], None] | None = None,
) -> int:
    """Run ``argv`` until it exits cleanly or ``stop`` is set; restart it whenever it dies. ``on_start`` is told of
    the first process."""
    stop = stop or threading.Event()
    restarts: Counter[str] = Counter()
    delay = JOB_PROCESS.first_s
    child: subprocess.Popen | None = None
    failed_at = ""

    def forward(signum, frame):  # SIGTERM or Ctrl-C: the job finishes its batch and exits; no restart
        stop.set()  # _wait sends the child one SIGTERM (a second could find the job's own handler gone)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            started = time.monotonic()
            child = subprocess.Popen(
                argv,
                env={**env, RESTARTS_ENV: json.dumps(restarts), LAST_FAILURE_ENV: failed_at},
                preexec_fn=die_with_parent(),
            )
            if on_start is not None:
                on_start(child)
                on_start = None
            code = _wait(child, stop)
            failed_at = repr(time.time())
            if code in (0, PERMANENT_EXIT) or stop.is_set():
                return code
            if time.monotonic() - started > STEADY_AFTER_S:
                delay = JOB_PROCESS.first_s
            reason = exit_reason(code)
            restarts[reason] += 1
            log.warning(
                "the stream job ended (%s) after %.1f s: restart %d in %.0f s, from its checkpoint",
                reason,
                time.monotonic() - started,
                sum(restarts.values()),
                delay,
            )
            if stop.wait(delay):
                return code
            delay = JOB_PROCESS.next(delay, backoff_max_s)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
