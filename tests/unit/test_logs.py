"""Secrets never reach the log."""

from __future__ import annotations

import io
import json

from controller.logs import configure_logging, get_logger


def test_secret_keys_are_redacted() -> None:
    logger = get_logger("t")  # created before the configuration, as module loggers are
    stream = io.StringIO()
    configure_logging("info", stream=stream)
    logger.info("ami.login", secret="hunter2", api_token="abc", queue="support")
    record = json.loads(stream.getvalue())
    assert record["secret"] == "***"
    assert record["api_token"] == "***"
    assert record["queue"] == "support"
    assert record["event"] == "ami.login"
    assert record["component"] == "t"
    assert "hunter2" not in stream.getvalue()
