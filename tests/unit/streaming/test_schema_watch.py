"""A registry that cannot answer, while a batch asks it about a schema id, fails the batch within seconds
(its query restarts; the sink's retry then reports the real outage) instead of holding it for half a minute."""

import http.server
import socket
import threading
import time

import pytest

from core.exceptions import RegistryUnavailable
from core.settings import Settings
from streaming.decode import SchemaWatch


def test_a_registry_that_never_answers_is_unavailable_within_the_watch_timeout():
    """Apicurio with its PostgreSQL down: the connection is accepted and nothing comes back."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel accepts; nobody ever reads or answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        watch = SchemaWatch(Settings(schema_registry_url=url), timeout_s=1.0)
        asked = time.monotonic()
        with pytest.raises(RegistryUnavailable):
            watch.newly_registered({424242})
        assert time.monotonic() - asked < 5.0, "one short request, not the client's 10 s and its retries"


class _Failing(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"error_code": 50001, "message": "storage unavailable"}')

    def log_message(self, *args):
        pass


def test_a_server_error_from_the_registry_is_weather_not_a_misconfiguration():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        watch = SchemaWatch(Settings(schema_registry_url=f"http://127.0.0.1:{server.server_port}"))
        with pytest.raises(RegistryUnavailable, match="answered with a server error"):
            watch.newly_registered({424242})
    finally:
        server.shutdown()
