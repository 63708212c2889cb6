"""The demo traffic's pure parts: Poisson arrivals, patience, profile checks, the summary."""

from __future__ import annotations

import itertools
import random
import socket
from pathlib import Path

import pytest

from testbed.asterisk import DEMO_PORTS, demo_test_name, demo_test_ports
from testbed.asterisk import test_ports as suite_ports  # not collected as a test
from testbed.asterisk import test_slot as session_slot
from testbed.demo import Row, leads_csv, progress_bar, render_table, store_figures
from testbed.sipp import SippPool, udp_ports_free
from testbed.traffic import TrafficError, TrafficProfile, arrival_times, patience_s


def test_arrivals_are_a_seeded_poisson_process_within_the_duration() -> None:
    times = arrival_times(6.0, 36_000, random.Random(3))
    assert times == arrival_times(6.0, 36_000, random.Random(3))
    assert times == sorted(times) and 0 < times[0] and times[-1] < 36_000
    # 6/min over 10 h: 3600 expected; Poisson sd is 60, so +-300 is a 5-sigma band
    assert 3300 < len(times) < 3900
    gaps = [b - a for a, b in itertools.pairwise(times)]
    mean = sum(gaps) / len(gaps)
    assert 9.5 < mean < 10.5
    # exponential gaps: about 1 - 1/e of them are shorter than the mean
    assert 0.58 < sum(g < mean for g in gaps) / len(gaps) < 0.68


def test_no_rate_means_no_arrivals() -> None:
    assert arrival_times(0.0, 100, random.Random(1)) == []


def test_patience_never_drops_below_the_minimum() -> None:
    profile = TrafficProfile(patience_mean_s=5.0, patience_min_s=4.0)
    rng = random.Random(9)
    assert min(patience_s(profile, rng) for _ in range(1000)) == 4.0


@pytest.mark.parametrize(
    ("changes", "named"),
    [({"human": 0.6, "machine": 0.3, "busy": 0.2}, "add up to at most 1"),
     ({"agent_talk_min_s": 30, "agent_talk_max_s": 10}, "agent_talk_min_s"),
     ({"inbound_per_minute": -1.0}, "inbound_per_minute")],
)
def test_impossible_profiles_are_refused_by_name(changes: dict[str, float], named: str) -> None:
    with pytest.raises(TrafficError, match=named):
        TrafficProfile(**changes)  # type: ignore[arg-type]


def test_customer_mix_becomes_cumulative_thresholds() -> None:
    values = TrafficProfile(human=0.3, machine=0.1, busy=0.2).customer_values(
        Path("h"), Path("m"))
    assert (values["HUMAN_UPTO"], values["MACHINE_UPTO"], values["BUSY_UPTO"]) == (
        "0.3000", "0.4000", "0.6000")


def _call(outcome: str, queued: str, answered: str | None, ended: str) -> dict[str, object]:
    day = "2026-01-05T10:00:"
    return {"outcome": outcome, "queued_at": day + queued,
            "answered_at": answered and day + answered, "ended_at": day + ended}


def test_store_figures_count_outcomes_and_time_answered_calls() -> None:
    calls = [_call("answered", "00", "10", "40"), _call("answered", "00", "30", "50"),
             _call("abandoned", "00", None, "45"), _call("overflowed", "00", None, "59")]
    attempts = [{"result": r} for r in ("human", "human", "abandoned", "machine", "busy")]
    figures = store_figures(calls, attempts, [{"status": "complete"}, {"status": "failed"}],
                            threshold_s=20, short_abandon_s=5, agents=2, elapsed_s=50)
    assert (figures["offered"], figures["answered"], figures["abandoned"],
            figures["overflowed"]) == (4, 2, 1, 1)
    assert figures["asa_s"] == 20.0 and figures["aht_talk_s"] == 25.0
    assert figures["service_level"] == pytest.approx(1 / 3)  # 1 within 20 s of 2 + 1 abandon
    assert figures["occupancy"] == 0.5  # 50 s of talk over 2 agents x 50 s
    assert figures["dialer_answers"] == 4 and figures["abandon_ratio"] == pytest.approx(1 / 3)
    assert figures["recordings"] == 1


def test_rows_agree_exactly_on_counts_and_within_tolerance_on_ratios() -> None:
    assert Row("n", 3, "q", 3.0).agrees() is True
    assert Row("n", 3, "q", 4.0).agrees() is False
    assert Row("asa", 10.0, "q", 10.1, count=False).agrees() is True
    assert Row("asa", 10.0, "q", 11.0, count=False).agrees() is False
    assert Row("aht", 10.0).agrees() is None
    table = render_table([Row("offered", 3, "q", 4.0)])
    assert "NO" in table.splitlines()[1]


def test_progress_bar_and_leads() -> None:
    assert progress_bar(15, 30, width=10) == "[#####.....] 15/30 (50%)"
    assert progress_bar(0, 0, width=4) == "[....] 0/0 (0%)"
    lines = leads_csv(3).splitlines()
    assert lines[0] == "phone,name,timezone" and len(set(lines[1:])) == 3


def test_no_two_asterisk_instances_of_the_testbed_share_a_port() -> None:
    """The demo, each slot's suite instance and each slot's demo-test run side by side."""
    instances = [DEMO_PORTS] + [ports(slot) for slot in range(8)
                                for ports in (suite_ports, demo_test_ports)]
    taken: list[int] = []
    for p in instances:
        taken += [p.sip, p.ami, p.http, p.trunk, *range(p.rtp_start, p.rtp_end + 1)]
        if p.agent_phone is not None:
            taken.append(p.agent_phone)
    assert len(taken) == len(set(taken))
    # nor a name: starting an instance stops whatever ran under its name (two slots' demo tests
    # once stopped each other's Asterisk)
    names = [demo_test_name(slot) for slot in range(8)]
    assert len(set(names)) == 8 and "demo" not in names


def test_sipp_pool_skips_ports_another_process_holds(tmp_path: Path) -> None:
    pool = SippPool(tmp_path, asterisk_sip=5060, agent_phone_port=None, trunk_port=5070)
    _, sip_port, media_port = pool._next("127.0.0.3", None)
    first_sip = SippPool.FIRST_SIP_PORT + 500 * session_slot()
    pair = sip_port - first_sip
    taken = media_port + 10 * ((pair + 1) % SippPool.PORT_PAIRS - pair)
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:  # the next pair's media port is held, as by an earlier sipp or an ephemeral socket
        holder.bind(("127.0.0.3", taken))
        assert not udp_ports_free("127.0.0.3", [taken])
        _, next_sip, _ = pool._next("127.0.0.3", None)
        assert next_sip - first_sip == (pair + 2) % SippPool.PORT_PAIRS
    finally:
        holder.close()
    assert udp_ports_free("127.0.0.3", [taken])
