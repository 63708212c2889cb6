"""Unit tests share one process per worker: the logging setup a test (or the CLI it runs, which
logs warnings only) leaves behind is restored, so a later test still sees the info events it
captures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)
