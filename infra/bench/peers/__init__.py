"""The systems `shopstream bench` compares with shopstream, each in a folder of its own: ``plain`` (a
confluent-kafka + COPY consumer), ``quix`` (Quix Streams), ``flink`` (Flink SQL) and ``connect`` (Kafka Connect with
a JDBC sink connector). The last three install on first use, never in `make setup`."""

from __future__ import annotations

from core.settings import Settings

#: What each system guarantees and what work it does per event, for the reports: unlike work is not compared
#: unknowingly. (guarantee, work)
TRAITS: dict[str, tuple[str, str]] = {
    "shopstream": (
        "exactly-once: facts, KPIs and the ledger row commit together",
        "every data-quality rule, quarantine with the reason and the dead-letter topic, deduplication, order "
        "lines, per-minute KPIs",
    ),
    "plain": (
        "exactly-once: our sink (ledger); Kafka offsets committed after the database",
        "decode only (no validation, no quarantine: what does not decode is skipped); order lines, KPIs",
    ),
    "quix": (
        "at-least-once, made idempotent by ON CONFLICT DO NOTHING on the primary keys",
        "decode only; order lines; no KPIs",
    ),
    "flink": (
        "at-least-once (offsets with each checkpoint), made idempotent by upserts on the primary keys",
        "every clickstream rule; the order rules on the order's own fields (3 over its lines are left out, 3 "
        "only partly); quarantine with the rule, order lines (UNNEST); no KPIs; an undecodable record fails the job",
    ),
    "connect": (
        "at-least-once (offsets every flush interval), made idempotent by upserts on the primary keys",
        "none: no validation, no quarantine, no order lines (one table per topic), no KPIs; an undecodable or "
        "invalid record fails the task",
    ),
}


def traits_table(systems: list[str]) -> list[str]:
    """The Markdown table of ``systems``' guarantees and work."""
    rows = [f"| {s} | {TRAITS[s][0]} | {TRAITS[s][1]} |" for s in dict.fromkeys(systems) if s in TRAITS]
    return ["| System | Guarantee | Work per event |", "|---|---|---|", *rows] if rows else []


#: Peers with something to install on first use, and what it is.
INSTALLED = {
    "quix": "Quix Streams into its own virtualenv",
    "flink": "PyFlink into its own virtualenv, and its connector jars",
    "connect": "Kafka Connect's jars, Debezium's JDBC sink and Apicurio's converter",
}


def ensure_installed(settings: Settings, system: str) -> None:
    """Install ``system``'s own pieces unless they are there already (a no-op for the others)."""
    if system == "quix":
        from infra.bench.peers.quix import process as quix

        quix.ensure_env(settings)
    elif system == "flink":
        from infra.bench.peers.flink import process as flink

        flink.ensure_env(settings)
    elif system == "connect":
        from infra.bench.peers.connect import process as connect

        connect.ensure_env(settings)
