"""Apicurio Registry 3.x, serving the Confluent-compatible API at /apis/ccompat/v7.

Its storage is our PostgreSQL (database shopstream_registry), so schema ids, and with
them every message already on a topic, survive a restart. The default in-memory H2
would lose them.
"""

from __future__ import annotations

from infra.runtime import jvm
from infra.runtime.base import Service, answers_ok
from infra.runtime.services.postgres import REGISTRY_DB, REGISTRY_USER

REGISTRY_MIN_JAVA = 21  # Apicurio 3.2 and later


class Registry(Service):
    name = "registry"
    ports = (("registry_port", "registry_port"), ("registry_management_port", "registry_management_port"))

    @property
    def managed(self) -> bool:
        return self.settings.schema_registry_url is None

    def prepare(self) -> None:
        jvm.ensure_fetched(jvm.REGISTRY, self.settings.runtime_dir)

    def command(self) -> list[str]:
        s = self.settings
        folder = jvm.REGISTRY.folder(s.runtime_dir)
        props = {
            "quarkus.http.host": s.host,
            "quarkus.http.port": s.registry_port,
            "apicurio.storage.kind": "sql",
            "apicurio.storage.sql.kind": "postgresql",
            "apicurio.datasource.url": s.postgres("admin", REGISTRY_DB).jdbc_url(),
            "apicurio.datasource.username": REGISTRY_USER,
            # The password is not here: a -D option is on the command line, which `ps` shows every local user.
            "apicurio.datasource.jdbc.initial-size": 2,
            "apicurio.datasource.jdbc.min-size": 2,
            "apicurio.datasource.jdbc.max-size": 10,
            # Quarkus's management interface (health, metrics) is fixed on at build time;
            # left alone it binds 0.0.0.0:9000.
            "quarkus.management.host": s.host,
            "quarkus.management.port": s.registry_management_port,
            "quarkus.log.level": "WARN",
            'quarkus.log.category."io.apicurio".level': "INFO",
        }
        if len(s.postgres("admin").hosts) > 1:
            # Several members: pooled connections are checked before use, and idle ones every 10 s, with a query
            # that fails on a standby (at run time: a constant 1 / 0 in a CASE is folded, and fails everywhere,
            # when the query is planned). After a failover, a connection to the old primary (gone, or a standby
            # again) is dropped and the multi-host URL finds the new one. One server needs no check per borrow.
            props |= {
                "quarkus.datasource.postgresql.jdbc.validate-on-borrow": "true",
                "quarkus.datasource.postgresql.jdbc.validation-query-sql": "SELECT 1 / (NOT pg_is_in_recovery())::int",
                "quarkus.datasource.postgresql.jdbc.background-validation-interval": "10S",
            }
        java = jvm.find_java(REGISTRY_MIN_JAVA, f"Apicurio Registry {self.version()}").path
        return [
            java,
            f"-Xmx{s.registry_heap}",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            *(f"-D{k}={v}" for k, v in props.items()),
            "-jar",
            str(folder / "quarkus-run.jar"),
        ]

    def env(self) -> dict[str, str]:
        """The database password through the environment, which only this user (and root) can read: Quarkus maps
        APICURIO_DATASOURCE_PASSWORD to apicurio.datasource.password."""
        return {"APICURIO_DATASOURCE_PASSWORD": self.settings.registry_role_password.get_secret_value()}

    def healthy(self) -> bool:
        return answers_ok(f"{self.settings.registry_url}/subjects")

    def version(self) -> str:
        if not self.managed:
            return "external"
        return jvm.pom_property(jvm.REGISTRY, "apicurio.version")

    def address(self) -> str:
        return self.settings.registry_url
