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

from core.exceptions import TEMPFAIL_EXIT
from core.retry import JOB_PROCESS, STEADY_AFTER_S

log = logging.getLogger(__name__)

#: {reason: restarts so far}, handed to each new process so its counter carries on.
RESTARTS_ENV = "SHOPSTREAM_STREAM_RESTARTS"
#: When the previous process was seen to end (Unix time), for the job's failure timestamp.
LAST_FAILURE_ENV = "SHOPSTREAM_STREAM_LAST_FAILURE"
PERMANENT_EXIT = 2


def exit_reason(code: int) -> str:
    if code == TEMPFAIL_EXIT:
        return "dependency_unavailable"
    return f"signal_{signal.Signals(-code).name}" if code < 0 else f"exit_{code}"


def die_with_parent(sig: int = signal.SIGKILL):
    """A preexec_fn: the kernel sends the child ``sig`` when its parent dies (PR_SET_PDEATHSIG)."""

    def preexec() -> None:  # in the child, before exec
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, sig)

    return preexec


def supervise(
    argv: list[str], env: dict[str, str], stop: threading.Event | None = None, backoff_max_s: float | None = None
) -> int:
    """Run ``argv`` until it exits cleanly or ``stop`` is set; restart it whenever it dies."""
    stop = stop or threading.Event()
    restarts: Counter[str] = Counter()
    delay = JOB_PROCESS.first_s
    child: subprocess.Popen | None = None
    failed_at = ""

    def forward(signum, frame):  # SIGTERM or Ctrl-C: the job finishes its batch and exits; no restart
        stop.set()
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)

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
            code = child.wait()
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
