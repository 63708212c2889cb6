"""``callctl check-config`` refuses an overflow loop with exit 2, naming the key that closes it."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.cli.main import main

REPO = Path(__file__).resolve().parents[2]
LOOP = """
[inbound.queues.a]
[[inbound.queues.a.overflow]]
kind = "max_wait"
seconds = 30
destination = "queue:b"

[inbound.queues.b]
[[inbound.queues.b.overflow]]
kind = "no_agents"
destination = "queue:a"
"""


def test_check_config_refuses_an_overflow_loop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = (REPO / "controller.example.toml").read_text()
    head = example[: example.index("[inbound]")]
    path = tmp_path / "loop.toml"
    path.write_text(head + "[inbound]\n" + LOOP)
    assert main(["--config", str(path), "check-config"]) == 2
    err = capsys.readouterr().err
    assert "inbound.queues.b.overflow[0].destination" in err
    assert "overflow loop" in err
