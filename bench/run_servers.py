"""The servers of one bench run: the two references and the service (one process or two)."""

from __future__ import annotations

from pathlib import Path

from bench.load import Server


class ServerGroup:
    """One server, or several serving the same database; the load alternates over them.

    RSS figures are per process: the largest of the group's.
    """

    def __init__(self, servers: list[Server]) -> None:
        self.servers = servers

    @property
    def url(self) -> str:
        return self.servers[0].url

    @property
    def urls(self) -> list[str]:
        return [server.url for server in self.servers]

    def start(self, log_dir: Path) -> None:
        for server in self.servers:
            server.start(log_dir)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def wait_idle(self) -> None:
        for server in self.servers:
            server.wait_idle()

    def rss_mb(self) -> float:
        return max(server.rss_mb() for server in self.servers)

    def peak_rss_mb(self) -> float:
        return max(server.peak_rss_mb() for server in self.servers)


def references(core: str | None) -> dict[str, ServerGroup]:
    return {
        "bare": ServerGroup([Server("bench.reference_servers:bare_app", core=core)]),
        "memory": ServerGroup(
            [Server("bench.reference_servers:in_memory_app", core=core)]
        ),
    }


def service(
    database_url: str,
    work: Path,
    *,
    processes: int,
    core: str | None,
    secret_key: str,
) -> ServerGroup:
    """`python -m app serve` as its users run it, `processes` times on one database."""
    env = {
        "DATABASE_URL": database_url,
        "DISPATCH_IN_SERVE": "false",
        "MAIL_URL": f"file://{work / 'outbox'}",
        "SECRET_KEYS": secret_key,
        # Every anonymous create comes from 127.0.0.1: the per-client limit would
        # refuse all but ten a minute. The per-email one stays on (each create has an
        # address of its own), so creates pay for counting.
        "RATE_LIMIT_PER_CLIENT": "",
        "PUBLIC_BASE_URL": "https://bench.example.com",
    }
    return ServerGroup(
        [
            Server(f"app-serve-{n}", env=env, core=core, serve=True)
            for n in range(processes)
        ]
    )


def pinning(database: str, server_core: str | None, load_core: str | None) -> str:
    """How the run uses the machine's cores, said in the output."""
    if server_core is None:
        return "not pinned (taskset missing or a single core): figures are noisier"
    servers = (
        "the references and both service processes"
        if database == "postgresql"
        else "the references and the service"
    )
    said = (
        f"pinned: {servers} on core {server_core}, the load generator on core "
        f"{load_core}; uvloop + httptools everywhere"
    )
    if database == "postgresql":
        said += (
            "; PostgreSQL (a system service the bench does not start) is not pinned: "
            "its backends run on either core"
        )
    return said
