"""Quarantine rows cross from the transformation's CSV to the sink and the dead-letter publisher as a named tuple."""

import datetime as dt

from streaming.dead_letter import QuarantineRow, parse_quarantine
from streaming.transform import QUARANTINE_COLUMNS


def test_the_rows_fields_are_the_transformations_columns():
    assert QuarantineRow._fields == QUARANTINE_COLUMNS


def test_a_row_reads_its_source_its_bytes_and_its_schema_id():
    framed = bytes([0, 0, 0, 1, 44]) + b"body"
    kafka_time = dt.datetime.now(dt.UTC).isoformat(sep=" ")
    line = f'shop.clickstream,3,17,{kafka_time},schema,unknown_schema_id,"no, such id",,\\x{framed.hex()}\n'
    (row,) = parse_quarantine(line.encode())
    assert row.source == ("shop.clickstream", "3", "17")
    assert (row.category, row.rule, row.message, row.event_id) == ("schema", "unknown_schema_id", "no, such id", "")
    assert row.value == framed and row.schema_id == 300
    assert QuarantineRow(*row[:-1], raw="\\x00").schema_id is None
