"""The systems `shopstream bench` compares with shopstream, each in a folder of its own: ``plain`` (a
confluent-kafka + COPY consumer), ``quix`` (Quix Streams), ``flink`` (Flink SQL) and ``connect`` (Kafka Connect with
a JDBC sink connector). The last three install on first use, never in `make setup`."""

from __future__ import annotations

from core.settings import Settings

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
