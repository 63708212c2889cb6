"""Toll fraud and exposure: nobody unauthenticated reaches the trunk or the phones.

Numbers that look like international calls (a 9 prefix as agents dial out, a plain +44) are
sent from an unknown peer and from the carrier itself; each must be refused before any call
leaves through the trunk: the carrier's sipp sees no INVITE and no CDR has a trunk
destination. Unknown peers, and peers claiming to be an agent or the trunk by name, get a
digest challenge they cannot answer.
"""

from __future__ import annotations

import csv
import ipaddress
import subprocess
from collections.abc import Callable

import pytest

from testbed.asterisk import CARRIER_IP, AsteriskInstance
from testbed.sipp import SippPool

STRANGER_IP = "127.0.0.9"
OUTBOUND_LOOKING = ("900442079460000", "+442079460000", "9+442079460000")
REFUSED_UNKNOWN = {401, 403}


def _cdr_rows(asterisk: AsteriskInstance) -> list[list[str]]:
    master = asterisk.host_path(asterisk.log_dir) / "cdr-csv" / "Master.csv"
    if not master.exists():
        return []
    with master.open() as rows:
        return list(csv.reader(rows))


@pytest.fixture
def trunk_destinations(asterisk: AsteriskInstance) -> Callable[[], list[str]]:
    """Destination channels of the CDRs written during this test that went out through the
    trunk (the session's earlier tests, the dialer's, legitimately used it)."""
    before = len(_cdr_rows(asterisk))

    def written_since() -> list[str]:
        return [row[6] for row in _cdr_rows(asterisk)[before:]
                if len(row) > 6 and row[6].startswith("PJSIP/trunk")]

    return written_since


@pytest.mark.parametrize("number", OUTBOUND_LOOKING)
def test_stranger_cannot_call_out(
    sipp: SippPool, number: str, trunk_destinations: Callable[[], list[str]]
) -> None:
    carrier = sipp.carrier()
    caller = sipp.call(number, local_ip=STRANGER_IP)

    stats = caller.wait(timeout=20)

    assert stats.successful == 0 and stats.failed == 1
    assert REFUSED_UNKNOWN & set(caller.received_statuses()), caller.received_statuses()
    assert "INVITE" not in carrier.received_requests()
    assert trunk_destinations() == []


@pytest.mark.parametrize("number", OUTBOUND_LOOKING)
def test_carrier_cannot_loop_calls_back_out(
    asterisk: AsteriskInstance, sipp: SippPool, number: str,
    trunk_destinations: Callable[[], list[str]],
) -> None:
    carrier = sipp.carrier()
    caller = sipp.call(number, local_ip=CARRIER_IP)

    stats = caller.wait(timeout=20)

    assert stats.successful == 0 and stats.failed == 1
    assert 404 in caller.received_statuses(), caller.received_statuses()
    assert "INVITE" not in carrier.received_requests()
    assert trunk_destinations() == []
    assert "PJSIP/trunk" not in asterisk.cli("core show channels concise")


@pytest.mark.parametrize("claimed", ["1001", "trunk"])
def test_peer_claiming_a_name_without_credentials_is_challenged(
    asterisk: AsteriskInstance, sipp: SippPool, claimed: str
) -> None:
    number = "1002" if claimed == "1001" else "5000"
    caller = sipp.call(number, local_ip=STRANGER_IP, CALLER=claimed)

    stats = caller.wait(timeout=20)

    assert stats.successful == 0 and stats.failed == 1
    assert REFUSED_UNKNOWN & set(caller.received_statuses()), caller.received_statuses()


def test_agent_with_credentials_can_call_out(
    asterisk: AsteriskInstance, sipp: SippPool, trunk_destinations: Callable[[], list[str]]
) -> None:
    """The control for the refusals above: the path to the trunk exists, for agents only."""
    carrier = sipp.carrier(ANSWER_UPTO="1.0", BUSY_UPTO="1.0", RING_MIN_S="1", RING_MAX_S="1")
    agent = sipp.agent_call("1001", asterisk.secrets.agent_passwords["1001"], "900442079460000",
                            HOLD_MS="1000")

    stats = agent.wait(timeout=40)

    assert stats.successful == 1, agent.output()
    assert carrier.received_requests()[0] == "INVITE"
    assert trunk_destinations() != []


def test_asterisk_listens_on_loopback_only(asterisk: AsteriskInstance) -> None:
    pid = asterisk.pid()
    listing = subprocess.run(["ss", "-Hlntup"], capture_output=True, text=True, check=True).stdout
    exposed, ports = [], set()
    for line in listing.splitlines():
        if f"pid={pid}," not in line:
            continue
        protocol, local = line.split()[0], line.split()[4]
        address, port = local.rsplit(":", 1)
        ports.add(int(port))
        address = address.strip("[]").split("%")[0]
        if ipaddress.ip_address(address if address != "*" else "0.0.0.0").is_loopback:
            continue
        # pjsip's DNS resolver keeps client sockets on ephemeral ports: not services.
        if protocol == "udp" and int(port) >= 32768:
            continue
        exposed.append(line)
    assert {asterisk.ports.sip, asterisk.ports.ami, asterisk.ports.http} <= ports
    assert exposed == []
