import pytest
from pydantic import ValidationError

from core.settings import Settings


def test_defaults_point_at_the_local_stack(tmp_path):
    s = Settings(runtime_dir=tmp_path)
    assert s.kafka_bootstrap == "127.0.0.1:9092"
    assert s.registry_url == "http://127.0.0.1:8081/apis/ccompat/v7"
    assert s.topic("orders") == "shop.orders"


def test_environment_uses_the_shopstream_prefix(monkeypatch, tmp_path):
    monkeypatch.setenv("SHOPSTREAM_KAFKA_PORT", "19092")
    monkeypatch.setenv("SHOPSTREAM_TOPIC_PREFIX", "test1")
    s = Settings(runtime_dir=tmp_path)
    assert s.kafka_bootstrap == "127.0.0.1:19092"
    assert s.topic("clickstream") == "test1.clickstream"


def test_flags_override_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SHOPSTREAM_KAFKA_PORT", "19092")
    assert Settings(runtime_dir=tmp_path, kafka_port=29092).kafka_port == 29092


def test_external_services_replace_the_local_addresses(tmp_path):
    s = Settings(runtime_dir=tmp_path, bootstrap_servers="k1:9092,k2:9092",
                 schema_registry_url="http://reg:8080/apis/ccompat/v7")
    assert s.kafka_bootstrap == "k1:9092,k2:9092"
    assert s.registry_url == "http://reg:8080/apis/ccompat/v7"


@pytest.mark.parametrize("field,value", [("kafka_port", 0), ("postgres_port", 70000),
                                          ("topic_prefix", "bad prefix!"), ("start_timeout_s", -1)])
def test_invalid_values_are_rejected(field, value, tmp_path):
    with pytest.raises(ValidationError):
        Settings(runtime_dir=tmp_path, **{field: value})


def test_unknown_settings_are_rejected(tmp_path):
    with pytest.raises(ValidationError):
        Settings(runtime_dir=tmp_path, kafka_prot=1)


def test_secrets_do_not_leak_into_repr(tmp_path):
    s = Settings(runtime_dir=tmp_path, writer_password="hunter2")
    assert "hunter2" not in repr(s)
    assert "password=hunter2" in s.postgres_dsn("writer")


def test_the_dsn_quotes_awkward_passwords_and_pins_the_session_to_utc(tmp_path):
    from psycopg2.extensions import parse_dsn

    awkward = "it's a pass word\\"
    dsn = parse_dsn(Settings(runtime_dir=tmp_path, writer_password=awkward).postgres_dsn("writer"))
    assert dsn["password"] == awkward
    assert dsn["options"] == "-c TimeZone=UTC"


def test_runtime_dir_is_made_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert Settings(runtime_dir="rt").runtime_dir == tmp_path / "rt"
