"""The testbed itself: Asterisk answers AMI, ARI and metrics, and calls survive the controller.

The fallback test is the promise of the dialplan: with no controller running, a customer
calling the demo DID still reaches an agent through the static `support` queue.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from datetime import UTC, datetime

import pytest

from controller.config import Config
from controller.inbound.config import WEEKDAYS, InboundConfig
from testbed.asterisk import AsteriskInstance
from testbed.sipp import SippPool


def ami_login(instance: AsteriskInstance, secret: str) -> str:
    """Log in over raw AMI and return the response block."""
    with socket.create_connection(("127.0.0.1", instance.ports.ami), timeout=5) as conn:
        reader = conn.makefile("rb")
        banner = reader.readline()
        assert banner.startswith(b"Asterisk Call Manager/")
        conn.sendall(
            f"Action: Login\r\nUsername: {instance.secrets.ami_user}\r\n"
            f"Secret: {secret}\r\nEvents: off\r\n\r\n".encode()
        )
        lines = []
        while (line := reader.readline().decode().strip()) != "":
            lines.append(line)
        return "\n".join(lines)


def test_ami_accepts_the_generated_user_and_refuses_a_wrong_secret(
    asterisk: AsteriskInstance,
) -> None:
    assert "Response: Success" in ami_login(asterisk, asterisk.secrets.ami_secret)
    assert "Response: Error" in ami_login(asterisk, "wrong-secret")


def test_ari_answers_with_credentials_only(asterisk: AsteriskInstance) -> None:
    status, body = asterisk.ari_request("asterisk/info")
    assert status == 200
    assert json.loads(body)["system"]["version"].startswith("22.")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{asterisk.ari_url}/ari/asterisk/info", timeout=5)
    assert refused.value.code == 401


def test_prometheus_metrics_are_served(asterisk: AsteriskInstance) -> None:
    with urllib.request.urlopen(f"{asterisk.ari_url}/metrics", timeout=5) as response:
        text = response.read().decode()
    assert "asterisk_channels_count" in text


def test_config_dir_holds_rendered_files_only(asterisk: AsteriskInstance) -> None:
    pjsip = (asterisk.config_dir / "pjsip.conf").read_text()
    assert asterisk.secrets.agent_passwords["1001"] in pjsip
    assert f"bind = 127.0.0.1:{asterisk.ports.sip}" in pjsip
    leftovers = [f.name for f in asterisk.config_dir.glob("*.conf") if "@AMI_" in f.read_text()]
    assert leftovers == []
    assert asterisk.monitor_dir.is_dir()


def test_dialplan_and_queue_are_loaded(asterisk: AsteriskInstance) -> None:
    inbound = asterisk.cli("dialplan show 5000@callctl-inbound")
    assert "Stasis(callctl,inbound,${EXTEN})" in inbound
    assert "'leastrecent' strategy" in asterisk.cli("queue show support")


def test_controller_down_caller_reaches_an_agent_through_the_fallback_queue(
    asterisk: AsteriskInstance, sipp: SippPool,
) -> None:
    # agents logged in earlier stay members (persistentmembers): Asterisk's, not the controller's
    for agent in ("1001", "1002"):
        asterisk.cli(f"queue add member PJSIP/{agent} to support")
    phones = sipp.agent_phones(RING_S="1", TALK_MS="30000")
    caller = sipp.call("5000", HOLD_MS="3000")
    try:
        stats = caller.wait(timeout=40)
    finally:
        for agent in ("1001", "1002"):
            asterisk.cli(f"queue remove member PJSIP/{agent} from support")

    assert stats.successful == 1, caller.output()
    assert 200 in caller.received_statuses()
    assert phones.received_requests()[:2] == ["INVITE", "ACK"]
    queue_log = (asterisk.host_path(asterisk.log_dir) / "queue_log").read_text()
    connects = [
        line for line in queue_log.splitlines() if "|support|" in line and "|CONNECT|" in line
    ]
    assert connects, queue_log[-2000:]


def test_restart_keeps_credentials_and_serves_again(asterisk: AsteriskInstance) -> None:
    pid_before = asterisk.pid()
    asterisk.restart()
    assert asterisk.is_running()
    assert asterisk.pid() != pid_before
    assert asterisk.ari_request("asterisk/info")[0] == 200


def test_controller_config_is_wired_to_the_test_instance(
    asterisk: AsteriskInstance, controller_config: Config,
) -> None:
    assert controller_config.ami.port == asterisk.ports.ami
    assert controller_config.ari.password.get_secret_value() == asterisk.secrets.ari_password
    assert controller_config.ari.app == asterisk.ari_app
    assert controller_config.store.url.startswith("sqlite:////")


def test_controller_down_and_no_agent_caller_gets_the_static_overflow(
    asterisk: AsteriskInstance, sipp: SippPool, controller_config: Config,
) -> None:
    """The queue's fallback_timeout and fallback_destination, generated into the dialplan."""
    queue = controller_config.inbound.queues["support"]
    quick = queue.model_copy(update={"fallback_timeout": 3})
    inbound = controller_config.inbound.model_copy(
        update={"queues": {**controller_config.inbound.queues, "support": quick}}
    )
    asterisk.install_inbound(inbound)
    try:
        caller = sipp.call("5000", HOLD_MS="20000")
        stats = caller.wait(timeout=30)
    finally:
        asterisk.install_inbound(controller_config.inbound)

    assert stats.successful == 1, caller.output()
    # answered, waited 3 s, heard the announcement, then Asterisk hung up long before 20 s
    assert "BYE" in caller.received_requests()
    exit_plan = asterisk.cli("dialplan show support@callctl-queue-exit")
    assert "CALLCTL_SOUND=vm-nobodyavail" in exit_plan


def _hours(start_h: int, end_h: int) -> dict[str, list[str]]:
    return {day: [f"{start_h:02d}:00-{end_h:02d}:00"] for day in WEEKDAYS}


def test_controller_down_the_dialplan_keeps_business_hours(
    asterisk: AsteriskInstance, sipp: SippPool,
) -> None:
    """Rendered GotoIfTime checks: an open schedule queues the caller, a closed one sends it
    to the after-hours destination, with no controller running."""
    hour = datetime.now(UTC).hour
    closed_from = (hour + 6) % 24  # a one-hour range far from now, never across midnight
    inbound = InboundConfig.model_validate({
        "queues": {"support": {}},
        "schedules": {
            "open-now": {"timezone": "UTC", "after_hours": "announcement:beep",
                         "hours": _hours(max(hour - 1, 0), min(hour + 2, 24))},
            "closed-now": {"timezone": "UTC", "after_hours": "announcement:beep",
                           "hours": _hours(closed_from, closed_from + 1)},
        },
        "numbers": {"5000": {"queue": "support", "schedule": "open-now"},
                    "5001": {"queue": "support", "schedule": "closed-now"}},
    })
    queue_log = asterisk.host_path(asterisk.log_dir) / "queue_log"
    asterisk.install_inbound(inbound)  # the session's routing comes back after the test

    seen = len(queue_log.read_text().splitlines())
    closed = sipp.call("5001", HOLD_MS="20000")
    closed_stats = closed.wait(timeout=15)  # Asterisk hangs up after the beep
    open_call = sipp.call("5000", HOLD_MS="2000")
    open_stats = open_call.wait(timeout=15)

    assert closed_stats.successful == 1 and "BYE" in closed.received_requests()
    assert open_stats.successful == 1 and "BYE" not in open_call.received_requests()
    entered = [line for line in queue_log.read_text().splitlines()[seen:]
               if "|support|" in line and "|ENTERQUEUE|" in line]
    assert len(entered) == 1, entered  # only the caller of the open number queued
