"""Scrape-time gauges: turn the snapshots of one scrape into metric families.

``SnapshotCollector`` holds the snapshots gathered for the scrape in progress (``Metrics.render``
awaits the providers, then asks the registry for the exposition, which calls ``collect``); it
never reads a service itself. Every known label value is emitted, zero when a snapshot leaves it
out, so a queue with no paused agent still shows ``state="paused"`` at 0.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from controller.metrics.snapshot import (
    ABANDON_WINDOWS,
    AGENT_ACTIVITIES,
    AGENT_STATES,
    COMPONENTS,
    AgentGauges,
    ComponentUp,
    DialerGauges,
    QueueGauges,
)


@dataclass(frozen=True, slots=True)
class ScrapeSnapshot:
    """Everything the gauges show in one scrape; ``None`` means its provider failed."""

    components: ComponentUp | None
    queues: Sequence[QueueGauges] | None
    dialers: Sequence[DialerGauges] | None
    agents: Sequence[AgentGauges] | None = None


_EMPTY = ScrapeSnapshot(components=None, queues=None, dialers=None)


def _families() -> dict[str, GaugeMetricFamily]:
    """The gauge families, empty; help texts state each formula."""
    specs: list[tuple[str, str, list[str]]] = [
        ("callctl_up", "1 if the component (ami, ari, store) is connected, else 0.", ["component"]),
        ("callctl_queue_open", "1 if the queue's schedule is open now, else 0.", ["queue"]),
        ("callctl_queue_callers", "Callers waiting in the queue now.", ["queue"]),
        (
            "callctl_queue_oldest_wait_seconds",
            "Seconds the longest-waiting caller has waited (0 when nobody waits).",
            ["queue"],
        ),
        (
            "callctl_queue_estimated_wait_seconds",
            "Estimated seconds a caller joining now waits before an agent answers.",
            ["queue"],
        ),
        (
            "callctl_queue_service_level_ratio",
            "Answered within the queue's threshold / (answered + abandoned after the "
            "short-abandon threshold) over the configured window; 1 when no call counted.",
            ["queue"],
        ),
        (
            "callctl_queue_service_level_target_ratio",
            "The queue's configured service level target (same formula as the ratio).",
            ["queue"],
        ),
        (
            "callctl_agents",
            "Queue members per state (an agent in two queues counts in both).",
            ["queue", "state"],
        ),
        (
            "callctl_agents_paused",
            "Paused queue members per pause reason (\"\" when none was given; missed: the"
            " auto-pause after unanswered rings).",
            ["queue", "reason"],
        ),
        (
            "callctl_agent_calls_handled",
            "Calls the agent took over the metrics window: queue calls it answered and"
            " campaign calls it was connected to.",
            ["agent"],
        ),
        (
            "callctl_agent_seconds",
            "Seconds of the metrics window the agent spent logged in, talking, in wrap-up (the"
            " queue's wrapup or the campaign's agent_wrapup_seconds after each call) and"
            " paused.",
            ["agent", "activity"],
        ),
        (
            "callctl_agent_paused_seconds",
            "Seconds of the metrics window the agent was paused, by pause reason.",
            ["agent", "reason"],
        ),
        (
            "callctl_agent_occupancy_ratio",
            "(talking + wrap-up) / (logged in - paused) over the metrics window.",
            ["agent"],
        ),
        (
            "callctl_dialer_lines_active",
            "Outbound calls of the campaign in progress (dialing, ringing or connected).",
            ["campaign"],
        ),
        (
            "callctl_dialer_dial_level",
            "Calls the pacer launches per available agent, as last decided.",
            ["campaign"],
        ),
        (
            "callctl_dialer_abandon_ratio",
            "Abandoned calls / live-answered (human) calls of the campaign over the window.",
            ["campaign", "window"],
        ),
        ("callctl_dialer_leads", "Leads of the campaign per lead state.", ["campaign", "state"]),
        (
            "callctl_dialer_agent_occupancy_ratio",
            "Agent time on calls and wrap-up / logged-in agent time of the campaign.",
            ["campaign"],
        ),
    ]
    return {name: GaugeMetricFamily(name, text, labels=labels) for name, text, labels in specs}


class SnapshotCollector(Collector):
    """Gauges of the snapshot set by ``Metrics.render`` for the scrape in progress."""

    def __init__(self) -> None:
        self._snapshot = _EMPTY

    def set_snapshot(self, snapshot: ScrapeSnapshot) -> None:
        self._snapshot = snapshot

    def describe(self) -> Iterator[Metric]:
        # names only, so the registry can detect clashes without calling a provider
        yield from _families().values()

    def collect(self) -> Iterator[Metric]:
        families = _families()
        snapshot = self._snapshot
        if snapshot.components is not None:
            self._add_components(families, snapshot.components)
        for queue in snapshot.queues or ():
            self._add_queue(families, queue)
        for dialer in snapshot.dialers or ():
            self._add_dialer(families, dialer)
        for agent in snapshot.agents or ():
            self._add_agent(families, agent)
        yield from families.values()

    @staticmethod
    def _add_agent(families: dict[str, GaugeMetricFamily], a: AgentGauges) -> None:
        families["callctl_agent_calls_handled"].add_metric([a.agent], a.calls_handled)
        for activity in AGENT_ACTIVITIES:
            families["callctl_agent_seconds"].add_metric(
                [a.agent, activity], a.seconds_by_activity.get(activity, 0.0))
        for reason, seconds in sorted(a.paused_by_reason.items()):
            families["callctl_agent_paused_seconds"].add_metric([a.agent, reason], seconds)
        if a.occupancy_ratio is not None:
            families["callctl_agent_occupancy_ratio"].add_metric([a.agent], a.occupancy_ratio)

    @staticmethod
    def _add_components(families: dict[str, GaugeMetricFamily], up: ComponentUp) -> None:
        for component in COMPONENTS:
            families["callctl_up"].add_metric([component], float(getattr(up, component)))

    @staticmethod
    def _add_queue(families: dict[str, GaugeMetricFamily], q: QueueGauges) -> None:
        labels = [q.queue]
        families["callctl_queue_open"].add_metric(labels, float(q.open))
        families["callctl_queue_callers"].add_metric(labels, q.callers)
        families["callctl_queue_oldest_wait_seconds"].add_metric(labels, q.oldest_wait_s)
        families["callctl_queue_estimated_wait_seconds"].add_metric(labels, q.estimated_wait_s)
        families["callctl_queue_service_level_ratio"].add_metric(labels, q.service_level_ratio)
        families["callctl_queue_service_level_target_ratio"].add_metric(
            labels, q.service_level_target_ratio
        )
        for state in AGENT_STATES:
            families["callctl_agents"].add_metric(
                [q.queue, state], q.agents_by_state.get(state, 0)
            )
        for reason, count in sorted(q.paused_by_reason.items()):
            families["callctl_agents_paused"].add_metric([q.queue, reason], count)

    @staticmethod
    def _add_dialer(families: dict[str, GaugeMetricFamily], d: DialerGauges) -> None:
        labels = [d.campaign]
        families["callctl_dialer_lines_active"].add_metric(labels, d.lines_active)
        families["callctl_dialer_dial_level"].add_metric(labels, d.dial_level)
        families["callctl_dialer_agent_occupancy_ratio"].add_metric(labels, d.occupancy_ratio)
        for window in ABANDON_WINDOWS:
            families["callctl_dialer_abandon_ratio"].add_metric(
                [d.campaign, window], d.abandon_ratio_by_window.get(window, 0.0)
            )
        for state, count in sorted(d.leads_by_state.items()):
            families["callctl_dialer_leads"].add_metric([d.campaign, state], count)
