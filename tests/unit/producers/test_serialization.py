"""The Confluent wire format written with fastavro. Byte equality with confluent-kafka's
own AvroSerializer is proven against the real registry in the integration tier."""

import io

import fastavro
import pytest

import schemas
from producers import faults
from producers.serialization import ConfluentAvroDeserializer, ConfluentAvroSerializer, split_frame
from schemas import quality
from tests.fixtures.generator import make_generator


def events(n=400, **kw):
    gen = make_generator(**kw)
    return [next(gen) for _ in range(n)]


def test_the_frame_is_magic_byte_id_and_avro_body():
    schema = schemas.latest("orders")
    record = next(e.record for e in events() if e.family == "orders")
    payload = ConfluentAvroSerializer(1234, schema.text)(record)
    assert payload[0] == 0 and int.from_bytes(payload[1:5], "big") == 1234
    schema_id, body = split_frame(payload)
    assert schema_id == 1234
    assert fastavro.schemaless_reader(io.BytesIO(body), schema.parsed, None)["line_items"] == record["line_items"]


def test_v1_and_v2_writers_both_decode_with_the_v2_reader():
    v1, v2 = schemas.versions("clickstream")
    serializers = {1: ConfluentAvroSerializer(1, v1.text), 2: ConfluentAvroSerializer(2, v2.text)}
    reader = ConfluentAvroDeserializer({1: v1.parsed, 2: v2.parsed}, reader_schema=v2.parsed)
    clicks = [e for e in events(v2_ratio=0.5) if e.family == "clickstream"]
    assert {e.version for e in clicks} == {1, 2}
    for e in clicks:
        decoded = reader(serializers[e.version](e.record))
        assert decoded["event_id"] == e.record["event_id"]
        assert decoded["campaign"] == (e.record["campaign"] if e.version == 2 else None)


def test_v2_is_backward_compatible_with_v1():
    v1, v2 = schemas.versions("clickstream")
    # BACKWARD: a consumer on v2 reads data written with v1 (checked by fastavro's resolution).
    record = next(e.record for e in events() if e.family == "clickstream")
    body = io.BytesIO()
    fastavro.schemaless_writer(body, v1.parsed, record)
    body.seek(0)
    assert fastavro.schemaless_reader(body, v1.parsed, v2.parsed)["campaign"] is None


@pytest.mark.parametrize("rule", quality.RULES["schema"]["clickstream"])
def test_schema_faults_make_messages_our_decoder_rejects(rule):
    import random

    schema = schemas.latest("clickstream")
    record = next(e.record for e in events() if e.family == "clickstream")
    good = ConfluentAvroSerializer(7, schema.text)(record)
    bad = faults.break_bytes(rule, good, random.Random(1))
    decoder = ConfluentAvroDeserializer({7: schema.parsed})
    with pytest.raises((ValueError, KeyError, EOFError, StopIteration, OverflowError, MemoryError, UnicodeDecodeError)):
        decoder(bad)


def test_the_body_is_what_fastavro_writes_for_every_kind_of_event():
    """cavro writes the bodies (it is faster); fastavro, the reference codec here, must write the same bytes for
    every version and every fault the generator makes (a completeness fault's nulls, a range fault's values...)."""
    from producers.options import DEFAULT_FAULTS

    made = events(3000, faults=DEFAULT_FAULTS, duplicate_ratio=0.02, v2_ratio=0.5)
    assert {e.category for e in made} >= {"valid", "duplicate", *quality.CATEGORIES}
    for family in ("clickstream", "orders"):
        for version in schemas.versions(family):
            serialize = ConfluentAvroSerializer(9, version.text)
            for e in (e for e in made if e.family == family and e.version == version.version):
                body = io.BytesIO()
                fastavro.schemaless_writer(body, version.parsed, e.record)
                assert serialize(e.record)[5:] == body.getvalue(), (e.category, e.rule)
