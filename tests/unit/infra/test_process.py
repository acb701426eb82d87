import socket
import sys

import pytest

from core.exceptions import PortInUse
from infra.runtime.process import ManagedProcess, ensure_port_free, port_is_free


def test_a_bound_port_is_reported_with_the_setting_to_change():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not port_is_free("127.0.0.1", port)
        with pytest.raises(PortInUse, match=f"port {port}.*SHOPSTREAM_KAFKA_PORT"):
            ensure_port_free("127.0.0.1", port, "kafka", "kafka_port")


def test_a_managed_process_is_found_by_pid_file_and_stopped(tmp_path):
    proc = ManagedProcess("waiter", tmp_path)
    pid = proc.start([sys.executable, "-c", "import signal; signal.pause()"])  # runs until a signal ends it
    assert ManagedProcess("waiter", tmp_path).pid() == pid
    assert proc.stop(timeout=5)
    assert proc.pid() is None
    assert not proc.pid_file.exists()
    assert not proc.stop()


def test_a_stale_pid_file_is_ignored(tmp_path):
    proc = ManagedProcess("ghost", tmp_path)
    proc.pid_file.parent.mkdir(parents=True)
    proc.pid_file.write_text("999999")
    assert proc.pid() is None
