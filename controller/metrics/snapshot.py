"""What the scrape-time collector reads: immutable snapshots and the label vocabularies.

Providers (the live model, the dialer, the store) return these plain dataclasses; the collector
never reaches into a service. The label value tuples are the closed sets the metric contract
allows, so dashboards and alerts can rely on every series existing from the first scrape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

from controller.state.model import AgentState

QueueOutcome = Literal[
    "answered", "abandoned", "overflowed", "after_hours", "failed", "callback", "node_lost"
]
DialerResult = Literal[
    "human", "machine", "busy", "no_answer", "failed", "abandoned", "not_dialed", "lost"
]
AbandonWindow = Literal["1h", "24h", "30d"]
RecordingResult = Literal["saved", "failed"]
Component = Literal["ami", "ari", "store"]

QUEUE_OUTCOMES: tuple[QueueOutcome, ...] = get_args(QueueOutcome)
# what ``callctl_agents`` counts queue members in: an unavailable member (phone unreachable) is
# no agent at work, so it is left out of every queue's count
AGENT_STATES: tuple[AgentState, ...] = tuple(
    state for state in AgentState if state is not AgentState.UNAVAILABLE
)
AGENT_ACTIVITIES = ("logged_in", "talking", "wrapup", "paused")
DIALER_RESULTS: tuple[DialerResult, ...] = get_args(DialerResult)
ABANDON_WINDOWS: tuple[AbandonWindow, ...] = get_args(AbandonWindow)
RECORDING_RESULTS: tuple[RecordingResult, ...] = get_args(RecordingResult)
COMPONENTS: tuple[Component, ...] = get_args(Component)


@dataclass(frozen=True, slots=True)
class ComponentUp:
    """Whether each adapter is connected (AMI logged in, ARI websocket open, store reachable)."""

    ami: bool
    ari: bool
    store: bool


@dataclass(frozen=True, slots=True)
class QueueGauges:
    """One inbound queue at scrape time.

    ``service_level_ratio`` comes from ``service_level.service_level_ratio`` over the configured
    window; ``agents_by_state`` counts queue members per state (a state left out counts 0),
    ``paused_by_reason`` the paused ones per pause reason.
    """

    queue: str
    open: bool
    callers: int
    oldest_wait_s: float
    estimated_wait_s: float
    service_level_ratio: float
    service_level_target_ratio: float
    agents_by_state: Mapping[AgentState, int] = field(default_factory=dict)
    paused_by_reason: Mapping[str, int] = field(default_factory=dict)  # "" for no reason


@dataclass(frozen=True, slots=True)
class AgentGauges:
    """One agent over the metrics window (``agents/stats.py``): ``seconds_by_activity`` has
    every ``AGENT_ACTIVITIES`` key, ``paused_by_reason`` every configured reason (zeros kept,
    so each agent has the same series); ``occupancy_ratio`` is None without working time."""

    agent: str
    calls_handled: int
    seconds_by_activity: Mapping[str, float]
    paused_by_reason: Mapping[str, float]
    occupancy_ratio: float | None


@dataclass(frozen=True, slots=True)
class DialerGauges:
    """One outbound campaign at scrape time.

    ``abandon_ratio_by_window`` is abandoned / live-answered (human) calls per window (a window
    left out counts 0); ``leads_by_state`` uses the store's lead states as label values.
    """

    campaign: str
    lines_active: int
    dial_level: float
    occupancy_ratio: float
    abandon_ratio_by_window: Mapping[AbandonWindow, float] = field(default_factory=dict)
    leads_by_state: Mapping[str, int] = field(default_factory=dict)
