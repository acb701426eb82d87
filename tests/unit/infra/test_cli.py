"""The CLI answers bad input with one clear line and a non-zero exit, never a traceback."""

import subprocess
import sys


def shopstream(*args, env=None):
    import os
    return subprocess.run([sys.executable, "-m", "infra", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=60)


def test_help_lists_the_commands_and_their_environment_variables():
    out = shopstream("--help")
    assert out.returncode == 0
    for word in ("up", "down", "status", "logs", "kafka", "SHOPSTREAM_KAFKA_PORT"):
        assert word in out.stdout


def test_an_unknown_flag_is_a_usage_error():
    out = shopstream("status", "--colour")
    assert out.returncode == 2
    assert "No such option" in out.stderr
    assert "Traceback" not in out.stderr


def test_an_invalid_setting_names_the_flag_and_variable():
    out = shopstream("status", env={"SHOPSTREAM_POSTGRES_PORT": "70000"})
    assert out.returncode == 2
    assert "invalid setting postgres_port" in out.stderr
    assert "SHOPSTREAM_POSTGRES_PORT" in out.stderr
    assert "Traceback" not in out.stderr


def test_an_unknown_kafka_tool_is_named():
    out = shopstream("kafka", "reassign-everything")
    assert out.returncode == 2
    assert "unknown Kafka tool" in out.stderr
