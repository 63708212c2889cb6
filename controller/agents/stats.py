"""Per-agent numbers supervisors read: calls handled (inbound and outbound), talk and wrap-up
time, AHT, time logged in and paused by reason, occupancy, the calls' dispositions. Pure: sums
intervals clipped to a window.

Status intervals come from ``agent_status_log`` (one row per status the agent was in). Calls
come from ``inbound_calls`` (answered by the agent: the router stores the agent at the answer)
and from the dialer's ``attempts`` (connected to the agent: the runner stores the agent at the
connect); talk runs from the answer or connect to the end, or to now while the call goes on.
Wrap-up follows each handled call for its queue's ``wrapup`` (app_queue enforces it; no event
marks its end) or its campaign's ``agent_wrapup_seconds``, unless the agent ended it first:
``*47`` (``agent_wrapup_ends``), a disposition keyed in it, or the agent's next call; it is
clipped to the window. AHT is (talk + wrap-up) / calls handled; occupancy is (talk + wrap-up)
/ time logged in and not paused (None without such time). Hold time is in the talk time:
app_queue reports no hold apart from it.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from controller.agents.machine import AgentStatus


@dataclass(frozen=True)
class StatusInterval:
    agent_id: str
    status: AgentStatus
    reason: str
    started_at: datetime
    ended_at: datetime | None  # None: still in it


@dataclass(frozen=True)
class HandledCall:
    agent_id: str
    answered_at: datetime  # the agent's talk began (an outbound call's connect)
    ended_at: datetime | None  # None: still talking
    wrapup_s: float  # the after-call work its queue or campaign gives it
    disposition: str | None = None  # what the agent keyed it came to
    disposed_at: datetime | None = None
    outbound: bool = False  # a campaign's call, not a queue's


@dataclass(frozen=True)
class AgentStats:
    agent_id: str
    calls_handled: int = 0  # inbound and outbound
    outbound_calls: int = 0
    talk_s: float = 0.0
    wrapup_s: float = 0.0
    logged_in_s: float = 0.0
    paused_s: Mapping[str, float] = field(default_factory=dict)  # by reason ("" none given)
    dispositions: Mapping[str, int] = field(default_factory=dict)  # handled calls by name

    @property
    def aht_s(self) -> float | None:
        return (self.talk_s + self.wrapup_s) / self.calls_handled if self.calls_handled else None

    @property
    def occupancy(self) -> float | None:
        working = self.logged_in_s - sum(self.paused_s.values())
        return min(1.0, (self.talk_s + self.wrapup_s) / working) if working > 0 else None

    def as_row(self) -> dict[str, object]:
        """What ``callctl agent stats --json`` and ``/api/v1/agents/stats`` show of it:
        seconds whole, AHT to 0.1 s, occupancy to 0.001, "none" for no pause reason."""
        return {"agent": self.agent_id, "calls": self.calls_handled,
                "outbound": self.outbound_calls,
                "aht_s": None if self.aht_s is None else round(self.aht_s, 1),
                "logged_in_s": round(self.logged_in_s), "talk_s": round(self.talk_s),
                "wrapup_s": round(self.wrapup_s),
                "paused_s": {reason or "none": round(seconds)
                             for reason, seconds in sorted(self.paused_s.items())},
                "occupancy": None if self.occupancy is None else round(self.occupancy, 3),
                "dispositions": dict(self.dispositions)}


def _overlap(start: datetime, end: datetime | None, since: datetime, now: datetime) -> float:
    return max(0.0, (min(end or now, now) - max(start, since)).total_seconds())


def agent_stats(
    intervals: Iterable[StatusInterval], calls: Iterable[HandledCall], since: datetime,
    now: datetime, wrapup_ends: Iterable[tuple[str, datetime]] = (),
) -> list[AgentStats]:
    """Every agent that was logged in or handled a call in ``[since, now]``, by id;
    ``wrapup_ends`` are (agent, when) it ended a wrap-up early."""
    logged_in: defaultdict[str, float] = defaultdict(float)
    paused: defaultdict[str, defaultdict[str, float]] = defaultdict(lambda: defaultdict(float))
    for interval in intervals:
        seconds = _overlap(interval.started_at, interval.ended_at, since, now)
        if interval.status is AgentStatus.LOGGED_OUT or seconds <= 0:
            continue
        logged_in[interval.agent_id] += seconds
        if interval.status is AgentStatus.PAUSED:
            paused[interval.agent_id][interval.reason] += seconds
    handled: defaultdict[str, int] = defaultdict(int)
    outbound: defaultdict[str, int] = defaultdict(int)
    talk: defaultdict[str, float] = defaultdict(float)
    wrapup: defaultdict[str, float] = defaultdict(float)
    disposed: defaultdict[str, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
    calls = [call for call in calls if since <= call.answered_at <= now]
    # what ends an agent's wrap-up before its time: *47, or the agent's next call
    cuts: defaultdict[str, list[datetime]] = defaultdict(list)
    for agent_id, at in wrapup_ends:
        cuts[agent_id].append(at)
    for call in calls:
        cuts[call.agent_id].append(call.answered_at)
    for times in cuts.values():
        times.sort()
    for call in calls:
        handled[call.agent_id] += 1
        outbound[call.agent_id] += call.outbound
        if call.disposition is not None:
            disposed[call.agent_id][call.disposition] += 1
        talk[call.agent_id] += _overlap(call.answered_at, call.ended_at, since, now)
        if call.ended_at is not None and call.wrapup_s:
            ends = [call.ended_at + timedelta(seconds=call.wrapup_s),
                    _first_from(cuts[call.agent_id], call.ended_at) or now]
            if call.disposed_at is not None:  # keyed in the wrap-up, it ends it (a key before
                # the end is the two clocks of talk end and key a few ms apart: no wrap-up)
                ends.append(max(call.disposed_at, call.ended_at))
            wrapup[call.agent_id] += _overlap(call.ended_at, min(ends), since, now)
    agents = sorted(set(logged_in) | set(handled))
    return [AgentStats(agent, handled[agent], outbound[agent], talk[agent], wrapup[agent],
                       logged_in[agent], dict(paused[agent]),
                       dict(sorted(disposed[agent].items())))
            for agent in agents]


def _first_from(times: Sequence[datetime], moment: datetime) -> datetime | None:
    """The first of the sorted ``times`` at or after ``moment``."""
    index = bisect_left(times, moment)
    return times[index] if index < len(times) else None
