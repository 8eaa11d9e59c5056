"""What a ``REDIS_URL`` says, read without the Redis client.

Settings validate the URL at every start of every process and tool; importing the client
for that (``redis`` and its parsers) cost a command-line tool about half a second before
it did anything. ``redis_client`` builds the clients from what this reads.
"""

from dataclasses import dataclass
from urllib.parse import unquote

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")


def is_cluster_url(url: str) -> bool:
    return url.split("://", 1)[0] in CLUSTER_SCHEMES


@dataclass(frozen=True)
class ClusterUrl:
    """A ``redis+cluster://`` URL's seed nodes and credentials."""

    nodes: list[tuple[str, int]]
    username: str | None
    password: str | None
    ssl: bool

    @classmethod
    def parse(cls, url: str) -> "ClusterUrl":
        """Raises ValueError, naming the URL's form, on anything else."""
        scheme, _, rest = url.partition("://")
        if scheme not in CLUSTER_SCHEMES:
            raise ValueError(f"not a Redis Cluster URL ({'|'.join(CLUSTER_SCHEMES)}://…)")
        location = rest.split("/", 1)[0].split("?", 1)[0]
        credentials, _, hosts = location.rpartition("@")
        username, _, password = credentials.partition(":")
        try:
            nodes = [_host_port(node) for node in hosts.split(",")]
        except ValueError:
            raise ValueError(
                "a Redis Cluster URL lists its nodes as host:port[,host:port…]"
            ) from None
        return cls(
            nodes,
            unquote(username) or None,
            unquote(password) or None,
            ssl=scheme == "rediss+cluster",
        )


def _host_port(node: str) -> tuple[str, int]:
    host, sep, port = node.strip().rpartition(":")
    if not sep or not host:
        raise ValueError(node)
    return host.strip("[]"), int(port)
