"""The Flink SQL peer: what a team that runs Flink would build instead of the Spark job.

Run by `shopstream bench` with the interpreter of its own virtual environment (PyFlink 2.2, see process.py), so
it imports nothing of shopstream: topics, reader schemas, the database and the rules' limits come in the
environment (FLINK_PEER_*).

One Flink SQL job in a local mini-cluster:
- a Kafka source per topic in the ``avro-confluent`` format, against the registry's Confluent-compatible API,
  with the reader schema given (Avro enums need it) and the Kafka coordinates, timestamp and headers as metadata;
- the data-quality rules as one CASE per family, first rule that fires wins, as far as SQL expresses them (the
  order-line rules need a fold over the array, which Flink SQL has no function for; they are left out);
- valid records upserted into the tables' primary keys through the JDBC connector (idempotent), order lines
  with ``CROSS JOIN UNNEST``; rejected ones into ``peer.quarantine`` with their category and rule;
- checkpointing on: the Kafka offsets are committed with each checkpoint, and the JDBC sink flushes on each
  (at-least-once; the upsert makes a re-delivery harmless).

Ready: the job is RUNNING (the ready file is touched then). SIGTERM cancels it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

from pyflink.common import Configuration, JobStatus
from pyflink.table import EnvironmentSettings, TableEnvironment

PRODUCT_EVENTS = "('product_view', 'add_to_cart', 'remove_from_cart')"
UUID = "'^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'"

# As Flink's AvroSchemaConverter reads the reader schemas (it must match exactly), an enum is a STRING. The
# event time is read as the long it is: the format also derives a schema from these columns, eagerly, even when
# one is given, and it derives none for TIMESTAMP(6) (timestamp-micros), so the reader schemas (process.py) drop
# that logical type; the views below make it a TIMESTAMP(3) (TO_TIMESTAMP_LTZ takes milliseconds).
CLICK_COLUMNS = """
    event_id STRING NOT NULL, event_time BIGINT NOT NULL, event_type STRING NOT NULL, customer_id STRING, session_id STRING,
    page_url STRING, referrer STRING, product_id STRING, category STRING, price DOUBLE, quantity INT,
    currency STRING, search_query STRING, device STRING, user_agent STRING, country STRING, campaign STRING"""
ORDER_COLUMNS = """
    event_id STRING NOT NULL, event_time BIGINT NOT NULL, order_id STRING NOT NULL, customer_id STRING,
    session_id STRING, currency STRING,
    line_items ARRAY<ROW<product_id STRING, category STRING, quantity INT, unit_price DOUBLE, line_total DOUBLE>
        NOT NULL> NOT NULL,
    subtotal DOUBLE, shipping DOUBLE, tax DOUBLE, total DOUBLE, payment_method STRING, country STRING,
    device STRING"""
METADATA = """,
    kafka_topic STRING METADATA FROM 'topic' VIRTUAL,
    kafka_partition INT METADATA FROM 'partition' VIRTUAL,
    kafka_offset BIGINT METADATA FROM 'offset' VIRTUAL,
    kafka_ltz TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
    headers MAP<STRING, BYTES> METADATA VIRTUAL"""


def blank(column: str) -> str:
    return f"({column} IS NULL OR TRIM({column}) = '')"


def bad_amount(column: str) -> str:
    return f"({column} IS NOT NULL AND NOT (ABS({column}) <= 1e9))"  # NaN and infinities fail the comparison


def first_rule(rules: list[tuple[str, str, str]]) -> str:
    """CASE … END naming the first rule that fires as 'category/rule' (null: valid). A rule whose inputs are
    null does not fire (WHEN null is not taken), as in streaming.validation."""
    whens = "\n".join(f"        WHEN {cond} THEN '{category}/{rule}'" for category, rule, cond in rules)
    return f"CASE\n{whens}\n    END"


def common_rules(future_s: int) -> tuple[list, list]:
    head = [
        ("data_type", "malformed_event_id", f"NOT REGEXP(event_id, {UUID})"),
        ("data_type", "timestamp_out_of_range", "event_ts < TIMESTAMP '2000-01-01 00:00:00'"),
        ("data_type", "malformed_currency", "currency IS NOT NULL AND NOT REGEXP(currency, '^[A-Z]{3}$')"),
    ]
    tail = [("business_rules", "future_event_time", f"event_ts > kafka_time + INTERVAL '{future_s}' SECOND(3)")]
    return head, tail


def click_rules(quantity_limit: int, future_s: int) -> str:
    head, tail = common_rules(future_s)
    product = f"event_type IN {PRODUCT_EVENTS}"
    return first_rule(
        [
            *head,
            ("data_type", "negative_quantity", "quantity < 0"),
            ("data_type", "amount_out_of_range", bad_amount("price")),
            ("data_type", "field_too_long", "CHAR_LENGTH(country) > 2"),
            ("completeness", "missing_customer_id", blank("customer_id")),
            ("completeness", "missing_session_id", blank("session_id")),
            ("completeness", "missing_product_id", f"{product} AND {blank('product_id')}"),
            (
                "completeness",
                "missing_product_fields",
                f"{product} AND ({blank('category')} OR price IS NULL OR quantity IS NULL OR currency IS NULL)",
            ),
            ("business_rules", "non_positive_price", "price <= 0"),
            ("business_rules", "quantity_over_limit", f"quantity > {quantity_limit}"),
            *tail,
        ]
    )


def order_rules(future_s: int) -> str:
    """The order rules on the order's own fields; those over its lines are not expressible (module docstring)."""
    head, tail = common_rules(future_s)
    amounts = " OR ".join(bad_amount(c) for c in ("total", "subtotal", "shipping", "tax"))
    return first_rule(
        [
            *head,
            ("data_type", "amount_out_of_range", amounts),
            ("data_type", "field_too_long", "CHAR_LENGTH(country) > 2"),
            ("completeness", "missing_customer_id", blank("customer_id")),
            ("completeness", "missing_session_id", blank("session_id")),
            ("completeness", "order_without_lines", "COALESCE(CARDINALITY(line_items), 0) <= 0"),
            (
                "completeness",
                "missing_order_fields",
                "currency IS NULL OR subtotal IS NULL OR shipping IS NULL OR tax IS NULL OR total IS NULL",
            ),
            *tail,
            ("business_rules", "order_total_mismatch", "ABS(total - (subtotal + shipping + tax)) > 0.01"),
        ]
    )


def source(name: str, topic: str, columns: str, schema: str, env: dict) -> str:
    return f"""
CREATE TEMPORARY TABLE {name} ({columns}{METADATA}) WITH (
    'connector' = 'kafka',
    'topic' = '{topic}',
    'properties.bootstrap.servers' = '{env["kafka"]}',
    'properties.group.id' = '{env["group"]}',
    'scan.startup.mode' = 'group-offsets',
    'properties.auto.offset.reset' = 'earliest',
    'value.format' = 'avro-confluent',
    'value.avro-confluent.url' = '{env["registry"]}',
    'value.avro-confluent.schema' = '{schema.replace("'", "''")}'
)"""


def sink(name: str, table: str, columns: str, key: str, env: dict, flush_s: float) -> str:
    return f"""
CREATE TEMPORARY TABLE {name} ({columns}, PRIMARY KEY ({key}) NOT ENFORCED) WITH (
    'connector' = 'jdbc',
    'url' = '{env["jdbc_url"]}',
    'table-name' = '{table}',
    'username' = '{env["user"]}',
    'password' = '{env["password"]}',
    'sink.buffer-flush.max-rows' = '{env["flush_rows"]}',
    'sink.buffer-flush.interval' = '{int(flush_s * 1000)}ms',
    'sink.max-retries' = '5'
)"""


LINEAGE_COLUMNS = """kafka_topic STRING, kafka_partition INT, kafka_offset BIGINT, kafka_time TIMESTAMP(3),
    produced_at_us BIGINT"""
LINEAGE = """kafka_topic, kafka_partition, kafka_offset, kafka_time,
    CAST(CAST(headers['produced_at'] AS STRING) AS BIGINT) AS produced_at_us"""


CLICK_SINK_COLUMNS = """
    event_id STRING, event_time TIMESTAMP(3), event_type STRING, customer_id STRING, session_id STRING,
    page_url STRING, referrer STRING, product_id STRING, category STRING, price DECIMAL(12, 2), quantity INT,
    currency STRING, search_query STRING, device STRING, user_agent STRING, country STRING, campaign STRING"""
ORDER_SINK_COLUMNS = """
    event_id STRING, event_time TIMESTAMP(3), order_id STRING, customer_id STRING, session_id STRING,
    currency STRING, subtotal DECIMAL(12, 2), shipping DECIMAL(12, 2), tax DECIMAL(12, 2), total DECIMAL(12, 2),
    line_count INT, payment_method STRING, country STRING, device STRING"""


def statements(env: dict, flush_s: float) -> list[str]:
    return [
        source("clicks_in", env["click_topic"], CLICK_COLUMNS, env["click_schema"], env),
        source("orders_in", env["order_topic"], ORDER_COLUMNS, env["order_schema"], env),
        sink(
            "clicks_out",
            "peer.clickstream_events",
            f"{CLICK_SINK_COLUMNS}, {LINEAGE_COLUMNS}",
            "event_time, event_id",
            env,
            flush_s,
        ),
        sink(
            "orders_out",
            "peer.orders",
            f"{ORDER_SINK_COLUMNS}, {LINEAGE_COLUMNS}",
            "event_time, event_id",
            env,
            flush_s,
        ),
        sink(
            "lines_out",
            "peer.order_lines",
            "event_time TIMESTAMP(3), event_id STRING, line_no INT, order_id STRING, product_id STRING, "
            "category STRING, quantity INT, unit_price DECIMAL(12, 2), line_total DECIMAL(12, 2)",
            "event_time, event_id, line_no",
            env,
            flush_s,
        ),
        sink(
            "quarantine_out",
            "peer.quarantine",
            "source_topic STRING, source_partition INT, source_offset BIGINT, kafka_time TIMESTAMP(3), "
            "category STRING, `rule` STRING, event_id STRING",
            "source_topic, source_partition, source_offset",
            env,
            flush_s,
        ),
        # The Kafka timestamp as UTC wall-clock time, like event_time (the session's zone is UTC).
        *(
            f"CREATE TEMPORARY VIEW {name}_at AS SELECT *, CAST(kafka_ltz AS TIMESTAMP(3)) AS kafka_time, "
            f"CAST(TO_TIMESTAMP_LTZ(event_time / 1000, 3) AS TIMESTAMP(3)) AS event_ts FROM {name}_in"
            for name in ("clicks", "orders")
        ),
        f"CREATE TEMPORARY VIEW clicks AS SELECT *, "
        f"{click_rules(env['quantity_limit'], env['future_s'])} AS reason FROM clicks_at",
        f"CREATE TEMPORARY VIEW orders AS SELECT *, {order_rules(env['future_s'])} AS reason FROM orders_at",
    ]


INSERTS = [
    """INSERT INTO clicks_out SELECT event_id, event_ts, event_type, customer_id, session_id, page_url, referrer,
    product_id, category, CAST(price AS DECIMAL(12, 2)), quantity, currency, search_query, device, user_agent,
    country, campaign, {lineage} FROM clicks WHERE reason IS NULL""",
    """INSERT INTO orders_out SELECT event_id, event_ts, order_id, customer_id, session_id, currency,
    CAST(subtotal AS DECIMAL(12, 2)), CAST(shipping AS DECIMAL(12, 2)), CAST(tax AS DECIMAL(12, 2)),
    CAST(total AS DECIMAL(12, 2)), CARDINALITY(line_items), payment_method, country, device, {lineage}
    FROM orders WHERE reason IS NULL""",
    """INSERT INTO lines_out SELECT o.event_ts, o.event_id, CAST(l.line_no AS INT), o.order_id, l.product_id,
    l.category, l.quantity, CAST(l.unit_price AS DECIMAL(12, 2)), CAST(l.line_total AS DECIMAL(12, 2))
    FROM orders AS o
    CROSS JOIN UNNEST(o.line_items) WITH ORDINALITY AS l(product_id, category, quantity, unit_price, line_total, line_no)
    WHERE o.reason IS NULL""",
    """INSERT INTO quarantine_out
    SELECT kafka_topic, kafka_partition, kafka_offset, kafka_time, SPLIT_INDEX(reason, '/', 0),
           SPLIT_INDEX(reason, '/', 1), event_id FROM clicks WHERE reason IS NOT NULL
    UNION ALL
    SELECT kafka_topic, kafka_partition, kafka_offset, kafka_time, SPLIT_INDEX(reason, '/', 0),
           SPLIT_INDEX(reason, '/', 1), event_id FROM orders WHERE reason IS NOT NULL""",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ready-file", type=Path, required=True)
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--flush-interval", type=float, default=0.5, help="seconds between the JDBC sink's flushes")
    parser.add_argument("--checkpoint-interval", type=float, default=5.0, help="seconds between checkpoints")
    parser.add_argument("--checkpoint-dir", type=Path, required=True)
    parser.add_argument("--rest-port", type=int, default=0, help="the mini-cluster's REST port (0: any free one)")
    parser.add_argument("--explain", action="store_true", help="print the plan and exit")
    args = parser.parse_args()
    try:
        env = json.loads(os.environ["FLINK_PEER_CONFIG"])
    except KeyError:
        parser.error("the configuration comes from `shopstream bench e2e --systems flink` (FLINK_PEER_CONFIG)")

    config = Configuration()
    for key, value in {
        "pipeline.jars": ";".join(f"file://{jar}" for jar in env["jars"]),
        "parallelism.default": str(args.parallelism),
        "execution.checkpointing.interval": f"{int(args.checkpoint_interval * 1000)}ms",
        "execution.checkpointing.dir": f"file://{args.checkpoint_dir}",
        "table.local-time-zone": "UTC",
        "rest.address": "127.0.0.1",
        "rest.bind-address": "127.0.0.1",
        "rest.port": str(args.rest_port),
        "pipeline.name": env["group"],
        # A failure restarts the job from its last checkpoint, three times, then fails it (and this process):
        # a record the job cannot read fails it every time (Flink's default with checkpointing is to retry forever).
        "restart-strategy.type": "fixed-delay",
        "restart-strategy.fixed-delay.attempts": "3",
        "restart-strategy.fixed-delay.delay": "2 s",
    }.items():
        config.set_string(key, value)
    tenv = TableEnvironment.create(
        EnvironmentSettings.new_instance().in_streaming_mode().with_configuration(config).build()
    )
    for statement in statements(env, args.flush_interval):
        tenv.execute_sql(statement)
    inserts = tenv.create_statement_set()
    for insert in INSERTS:
        inserts.add_insert_sql(insert.format(lineage=LINEAGE))
    if args.explain:
        print(inserts.explain())
        return
    result = inserts.execute()
    client = result.get_job_client()

    def stop(*_):
        client.cancel()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    while client.get_job_status().result() != JobStatus.RUNNING:
        time.sleep(0.2)
    args.ready_file.touch()
    print(f"job {client.get_job_id()} is running", flush=True)
    result.wait()


if __name__ == "__main__":
    main()
