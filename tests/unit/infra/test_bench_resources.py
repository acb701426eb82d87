"""The benchmarks' CPU sampler (infra.bench.resources) walks /proc while processes come and go."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from infra.bench.resources import ResourceSampler, _children


@pytest.fixture
def child():
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    yield proc
    proc.stdin.close()
    proc.wait()


def test_a_process_that_ends_while_it_is_walked_has_no_children_rather_than_an_error(child, monkeypatch):
    # The race a 300 s benchmark run hit: /proc/<pid>/task was there when the walk looked, gone when it listed it
    # (FileNotFoundError killed the sampler's thread, which then stopped sampling). Simulated: the listing fails.
    gone = f"/proc/{child.pid}/task"
    real_scandir, real_listdir = os.scandir, os.listdir

    def vanished(real):
        def listing(path="."):
            if os.fspath(path) == gone:
                raise FileNotFoundError(2, "No such file or directory", gone)
            return real(path)

        return listing

    monkeypatch.setattr(os, "scandir", vanished(real_scandir))
    monkeypatch.setattr(os, "listdir", vanished(real_listdir))
    assert _children(child.pid) == []


def test_the_sampler_finds_a_child_and_reads_its_cpu(child):
    assert child.pid in _children(os.getpid())
    sampler = ResourceSampler({"me": os.getpid()})
    sampler._sample()
    assert sampler.last["me"] > 0
