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
    s = Settings(
        runtime_dir=tmp_path,
        bootstrap_servers="k1:9092,k2:9092",
        schema_registry_url="http://reg:8080/apis/ccompat/v7",
        prometheus_url="http://prometheus:9090/",
    )
    assert s.kafka_bootstrap == "k1:9092,k2:9092"
    assert s.registry_url == "http://reg:8080/apis/ccompat/v7"
    assert s.prometheus_endpoint == "http://prometheus:9090"
    assert Settings(runtime_dir=tmp_path).prometheus_endpoint == "http://127.0.0.1:9090"


def test_secrets_are_read_from_files_in_the_secrets_folder(monkeypatch, tmp_path):
    """Compose mounts each secret as /run/secrets/<its variable>; the environment still wins over a file."""
    (tmp_path / "SHOPSTREAM_WRITER_PASSWORD").write_text("from-a-file")
    (tmp_path / "SHOPSTREAM_READER_PASSWORD").write_text("from-a-file")
    monkeypatch.setenv("SHOPSTREAM_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("SHOPSTREAM_READER_PASSWORD", "from-the-environment")
    s = Settings(runtime_dir=tmp_path)
    assert s.writer_password.get_secret_value() == "from-a-file"
    assert s.reader_password.get_secret_value() == "from-the-environment"
    monkeypatch.delenv("SHOPSTREAM_SECRETS_DIR")
    assert Settings(runtime_dir=tmp_path).writer_password.get_secret_value() == "shopstream-writer"


@pytest.mark.parametrize(
    "field,value",
    [("kafka_port", 0), ("postgres_port", 70000), ("topic_prefix", "bad prefix!"), ("start_timeout_s", -1)],
)
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


def test_one_postgres_model_speaks_libpq_and_jdbc_with_a_failover_list(tmp_path):
    from psycopg2.extensions import parse_dsn

    s = Settings(
        runtime_dir=tmp_path,
        postgres_host="db1:5433,db2",
        postgres_sslmode="verify-full",
        postgres_ssl_ca_location=tmp_path / "ca.pem",
    )
    reader = s.postgres("reader", "analytics")
    assert reader.address == "db1:5433,db2:5432"
    dsn = parse_dsn(reader.dsn())
    assert (dsn["host"], dsn["port"], dsn["dbname"], dsn["user"]) == (
        "db1,db2",
        "5433,5432",
        "analytics",
        s.reader_user,
    )
    assert (dsn["sslmode"], dsn["sslrootcert"], dsn["target_session_attrs"]) == (
        "verify-full",
        str(tmp_path / "ca.pem"),
        "read-write",
    )
    jdbc = reader.jdbc_url()
    assert jdbc.startswith("jdbc:postgresql://db1:5433,db2:5432/analytics?") and "targetServerType=primary" in jdbc
    assert "password" not in jdbc and s.reader_password.get_secret_value() not in repr(reader)
    one = parse_dsn(Settings(runtime_dir=tmp_path).postgres("writer").dsn())
    assert "target_session_attrs" not in one and one["host"] == "127.0.0.1"


def test_verifying_the_local_postgres_uses_its_ca_by_default(tmp_path):
    """The registry's JDBC URL and libpq's DSN carry the same sslmode and root certificate."""
    from psycopg2.extensions import parse_dsn

    local = Settings(runtime_dir=tmp_path, postgres_sslmode="verify-full").postgres("admin", "shopstream_registry")
    ca = tmp_path / "postgres" / "tls" / "ca.pem"
    assert parse_dsn(local.dsn())["sslrootcert"] == str(ca)
    assert f"sslmode=verify-full&sslrootcert={ca}" in local.jdbc_url()
    assert "sslrootcert" not in Settings(runtime_dir=tmp_path).postgres().dsn()  # prefer: encrypted, not verified
    remote = Settings(runtime_dir=tmp_path, postgres_host="db", postgres_sslmode="verify-full").postgres()
    assert remote.ssl_ca_location is None  # another server's CA is not ours: the system's, or the setting


@pytest.mark.parametrize("hosts", ["db1,,db2", "db1:port", "db 1", "[::1]:5432"])
def test_a_malformed_postgres_host_list_is_refused(tmp_path, hosts):
    with pytest.raises(ValidationError):
        Settings(runtime_dir=tmp_path, postgres_host=hosts)


def test_runtime_dir_is_made_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert Settings(runtime_dir="rt").runtime_dir == tmp_path / "rt"


def test_one_connection_model_speaks_librdkafka_spark_and_the_java_tools(tmp_path):
    s = Settings(
        runtime_dir=tmp_path,
        bootstrap_servers="k1:9094,k2:9094",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="shop",
        kafka_sasl_password='p"w=1',
        kafka_ssl_ca_location=tmp_path / "ca.pem",
    )
    assert s.kafka.librdkafka() == {
        "bootstrap.servers": "k1:9094,k2:9094",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "shop",
        "sasl.password": 'p"w=1',
        "ssl.ca.location": str(tmp_path / "ca.pem"),
    }
    spark = s.kafka.spark_options()
    assert spark["kafka.bootstrap.servers"] == "k1:9094,k2:9094"
    assert spark["kafka.sasl.jaas.config"] == (
        'org.apache.kafka.common.security.scram.ScramLoginModule required username="shop" password="p\\"w=1";'
    )
    assert spark["kafka.ssl.truststore.type"] == "PEM"

    # the properties file reads back, as java.util.Properties unescapes it, to the same values
    def unescape(value: str) -> str:
        out, chars = [], iter(value)
        for c in chars:
            out.append({"n": "\n"}.get(n := next(chars), n) if c == "\\" else c)
        return "".join(out)

    read = dict(line.split("=", 1) for line in s.kafka.java_properties_text().splitlines())
    assert {k: unescape(v) for k, v in read.items()} == s.kafka.java()


def test_sasl_without_its_credentials_is_a_configuration_error(tmp_path):
    with pytest.raises(ValidationError, match="kafka_sasl_username, kafka_sasl_password"):
        Settings(runtime_dir=tmp_path, kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="PLAIN")
    assert "sasl.mechanism" not in Settings(runtime_dir=tmp_path).kafka.librdkafka()


def test_offset_probes_retry_what_the_broker_says_will_pass():
    from confluent_kafka import KafkaError, KafkaException

    from core.kafka import _retriable

    assert _retriable(KafkaException(KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION)))
    # a fresh cluster's answer to the first group request (the job's start on a clean state): asked again
    assert _retriable(KafkaException(KafkaError(KafkaError.NOT_COORDINATOR)))
    assert not _retriable(KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)))
    assert not _retriable(ValueError("a bug"))


def test_a_local_kafka_cluster_is_bootstrapped_from_every_node(tmp_path):
    s = Settings(runtime_dir=tmp_path, kafka_nodes=3)
    assert s.kafka_bootstrap == "127.0.0.1:9092,127.0.0.1:9192,127.0.0.1:9292"
    assert s.kafka_node_port(3, s.kafka_controller_port) == 9293


def test_the_cluster_size_defaults_to_what_was_formatted(tmp_path):
    from core.settings import KAFKA_NODES_FILE

    assert Settings(runtime_dir=tmp_path).kafka_node_count == 1
    (tmp_path / "kafka").mkdir()
    (tmp_path / "kafka" / KAFKA_NODES_FILE).write_text("3")
    assert Settings(runtime_dir=tmp_path).kafka_node_count == 3
    assert Settings(runtime_dir=tmp_path, kafka_nodes=1).kafka_node_count == 1


def test_offsets_have_integer_partitions_and_round_trip_through_their_json_form():
    import json

    from core.kafka import offsets_from_json

    offsets = {"shop.clickstream": {0: 10, 1: 7}}
    text = json.dumps(offsets)  # Spark's and the ledger's form: partitions as text
    assert json.loads(text) == {"shop.clickstream": {"0": 10, "1": 7}}
    assert offsets_from_json(json.loads(text)) == offsets
    assert offsets_from_json(None) == {}


def test_postgres_with_replicas_is_reached_through_every_member(tmp_path):
    from core.settings import POSTGRES_REPLICAS_FILE

    single = Settings(runtime_dir=tmp_path).postgres()
    assert single.address == "127.0.0.1:5432" and "target_session_attrs" not in single.dsn()
    (tmp_path / "postgres").mkdir()
    (tmp_path / "postgres" / POSTGRES_REPLICAS_FILE).write_text("1")  # what `up --postgres-replicas 1` records
    pair = Settings(runtime_dir=tmp_path).postgres()
    assert pair.address == "127.0.0.1:5432,127.0.0.1:5532"
    assert "target_session_attrs=read-write" in pair.dsn()
    assert pair.jdbc_url().startswith("jdbc:postgresql://127.0.0.1:5432,127.0.0.1:5532/shopstream?")
    assert "targetServerType=primary" in pair.jdbc_url()
    assert Settings(runtime_dir=tmp_path, postgres_replicas=0).postgres().address == "127.0.0.1:5432"
    assert Settings(runtime_dir=tmp_path, postgres_host="db1,db2:6543").postgres().address == "db1:5432,db2:6543"
