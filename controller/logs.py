"""structlog set-up: one JSON object per line on stderr, secrets redacted.

Events are named ``domain.state_change`` (``ami.connected``, ``call.queued``) and carry the ids
they concern (``call_id``, ``queue``, ``campaign``) as keys, never inside the message text.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_SECRET_WORDS = ("secret", "password", "token", "api_key", "authorization")


def redact_secrets(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Replace the value of any key that names a secret, so no code path can leak one."""
    for key in event:
        if any(word in key.lower() for word in _SECRET_WORDS):
            event[key] = "***"
    return event


class _Stderr:
    """Whatever ``sys.stderr`` is when a line is written (pytest swaps it per test)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _LibraryRecords(logging.Handler):
    """Warnings of the libraries that use the standard ``logging`` (psycopg_pool's reconnect
    warnings, aiohttp's) as structured events too, so every line on stderr is one JSON object."""

    def emit(self, record: logging.LogRecord) -> None:
        logger = structlog.get_logger("library", component="library")
        method = getattr(logger, record.levelname.lower(), logger.warning)
        method("library.message", logger=record.name, message=record.getMessage())


def configure_logging(level: str = "info", stream: Any = None) -> None:
    logging.basicConfig(handlers=[_LibraryRecords()], level=logging.WARNING, force=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(stream or _Stderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """A module's logger. Lazy: it follows ``configure_logging`` even when called later,
    which matters because modules create their loggers at import time."""
    return structlog.get_logger(name, component=name)
