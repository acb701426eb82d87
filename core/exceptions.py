"""One exception hierarchy for the whole platform.

A bad *record* is data and goes to quarantine; these are for broken *dependencies*
and wrong *configuration*. Every message names the cause and the fix, because the CLI
prints it as the single line a user sees.
"""


class ShopstreamError(Exception):
    """Base of every error the platform raises on purpose."""


class ConfigError(ShopstreamError):
    """A setting, flag or spec file is invalid."""


class DependencyMissing(ShopstreamError):
    """A tool the runtime needs (Java, Maven, PostgreSQL, Prometheus) is not installed."""


class FetchError(ShopstreamError):
    """Downloading JVM artifacts failed."""


class PortInUse(ShopstreamError):
    """A port a service wants is taken by another process."""


class ServiceUnhealthy(ShopstreamError):
    """A service did not become healthy, or is down when it is needed."""


class DependencyUnavailable(ServiceUnhealthy):
    """A dependency is away right now (refused, timed out, shutting down): trying again later may succeed.
    The stream job's process exits with TEMPFAIL_EXIT on it, which its supervisor restarts with backoff."""


class RegistryError(ShopstreamError):
    """The schema registry is unreachable, or refused a schema."""


class RegistryUnavailable(RegistryError, DependencyUnavailable):
    """The schema registry did not answer."""


def not_reachable(what: str, address: str, cause: str, fix: str) -> str:
    """The one shape of every "a dependency did not answer" message: what, where, why, and the fix."""
    return f"{what} at {address} is not reachable ({cause}): {fix}"


#: sysexits' EX_TEMPFAIL: the exit code of a process that met a DependencyUnavailable.
TEMPFAIL_EXIT = 75
#: The exit code of a stream driver whose lease another driver took over (streaming.lease.Fenced): its supervisor
#: starts it again, and it finds its role (a standby) from the lease.
FENCED_EXIT = 76
