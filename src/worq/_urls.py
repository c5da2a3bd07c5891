"""URLs in messages and logs: never show a password."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import attrs

__all__ = ["CLUSTER_SCHEMES", "ClusterURL", "check_redis_database", "mask_url", "parse_cluster_url"]

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
"""The schemes of Redis Cluster URLs, and the scheme of one node's URL (TLS or not)."""

_CLUSTER_URL = re.compile(
    r"^(?P<scheme>[a-z+]+)://(?:(?P<userinfo>[^@/?#]*)@)?(?P<hosts>[^@/?#]*)"
    r"(?P<path>/[^?#]*)?(?:\?(?P<query>[^#]*))?$"
)
_SEED = re.compile(r"^(?P<host>\[[0-9a-fA-F:.]+\]|[^:\[\]]+):(?P<port>[0-9]{1,5})$")

_PASSWORD = re.compile(r"(//[^/?#@:]*:)[^/?#@]*@")


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, fit for messages and logs.

    Works on the text, without parsing ports or hosts, so that even a URL too
    broken to parse is masked.
    """
    return _PASSWORD.sub(r"\1***@", url)


def check_redis_database(url: str) -> None:
    """Refuse a Redis URL whose database (``/N`` or ``?db=N``) is not a number.

    redis-py silently ignores a database it cannot read (``/abc``), which
    would send a worker or client to database 0, with other data.

    Raises:
        ValueError: Naming the masked URL and what the database must be.
    """
    parts = urlsplit(url)
    given = [parts.path.strip("/")] if parts.scheme in ("redis", "rediss") else []
    given += parse_qs(parts.query).get("db", [])
    for database in given:
        if database and not (database.isascii() and database.isdigit()):
            raise ValueError(
                f"malformed Redis URL {mask_url(url)!r}: the database must be a number "
                f"(redis://host:6379/0, or ?db=0), got {database!r}"
            )


@attrs.frozen
class ClusterURL:
    """A Redis Cluster URL taken apart.

    Attributes:
        first: A ``redis://`` (or ``rediss://``) URL of the first seed node,
            with the user, password and query of the cluster URL, for
            redis-py's ``RedisCluster.from_url``.
        seeds: Every seed node, as (host, port), the first one included.
    """

    first: str
    seeds: tuple[tuple[str, int], ...]

    def for_node(self, host: str, port: int) -> str:
        """The URL of one node: :attr:`first` with that node's host and port."""
        parts = urlsplit(self.first)
        userinfo, _, _ = parts.netloc.rpartition("@")
        netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return parts._replace(netloc=f"{userinfo}@{netloc}" if userinfo else netloc).geturl()


def parse_cluster_url(url: str) -> ClusterURL:
    """Take apart ``redis+cluster://[user:password@]host:port[,host:port...][/0][?query]``.

    Seed nodes are separated by commas; the client learns the rest of the
    cluster from whichever answers first. ``rediss+cluster://`` is the same
    over TLS. A cluster has only database 0.

    Raises:
        ValueError: Naming the masked URL and what is wrong with it.
    """
    match = _CLUSTER_URL.match(url)
    if match is None or match["scheme"] not in CLUSTER_SCHEMES:
        raise ValueError(f"malformed Redis Cluster URL {mask_url(url)!r}: {_CLUSTER_FORM}")
    seeds: list[tuple[str, int]] = []
    for seed in match["hosts"].split(","):
        found = _SEED.match(seed)
        if found is None or not 0 < int(found["port"]) < 65536:
            raise ValueError(
                f"malformed Redis Cluster URL {mask_url(url)!r}: seed node {seed!r} is not "
                f"host:port; {_CLUSTER_FORM}"
            )
        seeds.append((found["host"].strip("[]"), int(found["port"])))
    database = (match["path"] or "").strip("/")
    databases = [database] if database else []
    databases += parse_qs(match["query"] or "").get("db", [])
    if any(db != "0" for db in databases):
        raise ValueError(
            f"malformed Redis Cluster URL {mask_url(url)!r}: a cluster has only database 0, "
            f"got {', '.join(databases)}"
        )
    userinfo = f"{match['userinfo']}@" if match["userinfo"] is not None else ""
    host, port = seeds[0]
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    query = f"?{match['query']}" if match["query"] else ""
    first = f"{CLUSTER_SCHEMES[match['scheme']]}://{userinfo}{netloc}/0{query}"
    return ClusterURL(first, tuple(seeds))


_CLUSTER_FORM = (
    "write redis+cluster://[user:password@]host:port[,host:port...] "
    "(rediss+cluster:// for TLS), seed nodes separated by commas"
)
