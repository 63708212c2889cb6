"""The config's ``store.url``, parsed once: which backend, and its options.

Pure (no driver imported), so config validation names ``store.url`` for a bad URL before
anything connects. Two forms:

- ``sqlite:///relative/path`` or ``sqlite:////absolute/path``
- ``postgresql://user:password@host:port/dbname?...`` (``postgres://`` too), any libpq URI.
  Two query options are callctl's own and removed before the URI reaches libpq:
  ``pool_max=N`` (connections in the pool, default 10) and ``prepared_statements=off`` for a
  transaction-mode pooler (PgBouncer, pgcat) in front of the server, where a statement
  prepared on one server connection is missing on the next.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SQLITE_PREFIX = "sqlite:///"
POSTGRES_SCHEMES = ("postgresql", "postgres")
DEFAULT_POOL_MAX = 10
_SWITCH = {"on": True, "true": True, "1": True, "off": False, "false": False, "0": False}


@dataclass(frozen=True, slots=True)
class SqliteUrl:
    path: Path


@dataclass(frozen=True, slots=True)
class PostgresUrl:
    conninfo: str  # the URI libpq gets: callctl's options removed
    pool_max: int = DEFAULT_POOL_MAX
    prepared_statements: bool = True

    def redacted(self) -> str:
        """The URI without its password, for logs and error messages."""
        parts = urlsplit(self.conninfo)
        if parts.password is None:
            return self.conninfo
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))


StoreUrl = SqliteUrl | PostgresUrl


def parse_store_url(url: str) -> StoreUrl:
    """The backend and options a store URL names; ``ValueError`` says what is wrong."""
    if url.startswith(SQLITE_PREFIX):
        path = url.removeprefix(SQLITE_PREFIX)
        if not path:
            raise ValueError("sqlite:/// needs a file path (sqlite:///var/callctl.db)")
        return SqliteUrl(Path(path))
    scheme = url.partition("://")[0] if "://" in url else ""
    if scheme in POSTGRES_SCHEMES:
        return _postgres(url)
    raise ValueError(
        f"unsupported store URL scheme {scheme or url!r}: use sqlite:///PATH"
        " or postgresql://USER@HOST:PORT/DBNAME"
    )


def _postgres(url: str) -> PostgresUrl:
    parts = urlsplit(url)
    if not parts.path.strip("/"):
        raise ValueError("a postgresql:// URL needs a database name (postgresql://HOST/DBNAME)")
    libpq_query, pool_max, prepared = [], DEFAULT_POOL_MAX, True
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "pool_max":
            if not value.isdigit() or int(value) < 1:
                raise ValueError(f"pool_max must be a whole number >= 1, got {value!r}")
            pool_max = int(value)
        elif key == "prepared_statements":
            if value.lower() not in _SWITCH:
                raise ValueError(f"prepared_statements must be on or off, got {value!r}")
            prepared = _SWITCH[value.lower()]
        else:
            libpq_query.append((key, value))
    conninfo = urlunsplit(parts._replace(query=urlencode(libpq_query)))
    return PostgresUrl(conninfo, pool_max, prepared)
