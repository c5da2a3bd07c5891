"""URLs in messages and logs: never show a password."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

__all__ = ["check_redis_database", "mask_url"]

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
