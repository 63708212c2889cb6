"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def var_dir(tmp_path: Path) -> Path:
    """A private stand-in for the checkout's ``var/`` (state, databases, rendered configs)."""
    path = tmp_path / "var"
    path.mkdir()
    return path
