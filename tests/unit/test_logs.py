"""Secrets never reach the log."""

from __future__ import annotations

import io
import json

from controller.logs import configure_logging, get_logger


def test_secret_keys_are_redacted() -> None:
    stream = io.StringIO()
    configure_logging("info", stream=stream)
    get_logger("t").info("ami.login", secret="hunter2", api_token="abc", queue="support")
    record = json.loads(stream.getvalue())
    assert record["secret"] == "***"
    assert record["api_token"] == "***"
    assert record["queue"] == "support"
    assert record["event"] == "ami.login"
    assert "hunter2" not in stream.getvalue()
