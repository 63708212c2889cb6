"""The store: ``open_store(url)`` opens the backend a ``store.url`` names (see ``url``)."""

from __future__ import annotations

from controller.store.base import Database, StoreError
from controller.store.url import PostgresUrl, SqliteUrl, parse_store_url


async def open_store(url: str) -> Database:
    """Open the store named by the config's ``store.url`` and bring its schema up to date."""
    try:
        parsed = parse_store_url(url)
    except ValueError as error:
        raise StoreError(f"store.url: {error}") from None
    if isinstance(parsed, PostgresUrl):
        from controller.store.postgres import PostgresDatabase  # psycopg only when used

        return await PostgresDatabase.open(parsed)
    assert isinstance(parsed, SqliteUrl)
    from controller.store.sqlite import SqliteDatabase

    return await SqliteDatabase.open(url)
