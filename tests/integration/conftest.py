"""Integration fixtures: one real Asterisk 22 for the session, sipp peers, a wired config.

The ``asterisk`` fixture builds the root when missing (a cold build takes about a minute) and
starts the TEST instance on its own ports (SIP 15060, AMI 15038, ARI 18088), so it can run
next to the demo instance of `make run`. It is stopped at session end, on failures too; an
atexit guard also covers an interpreter that exits without running fixture teardown, so no
asterisk or sipp survives the run.
"""

from __future__ import annotations

import atexit
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.config import Config, load_config
from controller.inbound.config import InboundConfig
from testbed.asterisk import AsteriskInstance, ensure_root, test_ports, test_slot
from testbed.controller_config import write_controller_config
from testbed.sipp import SippPool

_RUNNING: list[AsteriskInstance] = []
_POOLS: list[SippPool] = []
_BASE_INBOUND: dict[str, InboundConfig] = {}  # the routing each session instance starts with


@atexit.register
def _leave_nothing_running() -> None:
    for pool in _POOLS:
        pool.close()
    for instance in _RUNNING:
        instance.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Everything under tests/integration needs the real testbed.
    for item in items:
        if "integration" in str(item.path.parent):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def asterisk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AsteriskInstance]:
    """The test Asterisk instance, started once per session with a fresh config."""
    ensure_root()
    state = tmp_path_factory.mktemp("asterisk-state")
    slot = test_slot()
    instance = AsteriskInstance(f"test{slot or ''}", state, test_ports(slot), fresh=True)
    base = write_controller_config(
        instance, state / "controller.toml", http_port=free_loopback_port(),
        store_path=state / "callctl.db",
    )
    instance.inbound = _BASE_INBOUND[instance.name] = base.inbound
    _RUNNING.append(instance)
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()
        _RUNNING.remove(instance)


@pytest.fixture(autouse=True)
def _asterisk_is_running(request: pytest.FixtureRequest) -> None:
    """Restart the session instance if an earlier test stopped it (controller-down tests)."""
    if "asterisk" in request.fixturenames:
        instance: AsteriskInstance = request.getfixturevalue("asterisk")
        if not instance.is_running():
            instance.start()


@pytest.fixture(autouse=True)
def asterisk_left_as_found(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test gets the session instance as the first one did: no call still up, the base
    queues and dialplan (a test may have installed its own routing), and no queue member
    (members persist in astdb across tests), so one failing test cannot spoil the next."""
    yield
    if "asterisk" not in request.fixturenames:
        return
    instance: AsteriskInstance = request.getfixturevalue("asterisk")
    if not instance.is_running():
        return
    instance.hang_up_all()  # normally done already, by the sipp fixture
    if instance.inbound is not _BASE_INBOUND[instance.name]:
        instance.install_inbound(_BASE_INBOUND[instance.name])
    for line in instance.cli("queue show").splitlines():
        queue = re.match(r"^(\S+) has \d+ calls", line)
        if queue:
            current = queue.group(1)
        member = re.search(r"\((PJSIP/[^ )]+)", line) or re.match(r"^\s+(PJSIP/\S+)", line)
        if member and not queue:
            instance.cli(f"queue remove member {member.group(1)} from {current}")


@pytest.fixture
def sipp(asterisk: AsteriskInstance, tmp_path: Path) -> Iterator[SippPool]:
    """Start sipp peers for the test instance; every one is stopped after the test."""
    pool = SippPool(tmp_path / "sipp", asterisk.ports.sip, asterisk.ports.agent_phone,
                    asterisk.ports.trunk)
    _POOLS.append(pool)
    try:
        yield pool
    finally:
        # calls still up end while their sipp can answer the BYE: Asterisk would otherwise
        # retransmit it for 32 s, into the next test's sipp on the same port
        if asterisk.is_running():
            asterisk.hang_up_all()
        pool.close()
        _POOLS.remove(pool)


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def controller_config_file(asterisk: AsteriskInstance, tmp_path: Path) -> Path:
    """A controller TOML wired to the test instance: API on a free port, store in tmp_path."""
    path = tmp_path / "controller.toml"
    write_controller_config(asterisk, path, http_port=free_loopback_port(),
                            store_path=tmp_path / "callctl.db")
    return path


@pytest.fixture
def controller_config(controller_config_file: Path) -> Config:
    return load_config(controller_config_file)
