"""The /metrics exposition honours the metric contract and passes ``promtool check metrics``."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Sequence

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from controller.metrics import (
    ComponentUp,
    DialerGauges,
    Metrics,
    QueueGauges,
    SnapshotProviders,
)
from controller.metrics.snapshot import AgentGauges
from controller.state.model import AgentState

# name -> (type, label names of its series); histograms list the labels besides ``le``
CONTRACT: dict[str, tuple[str, set[str]]] = {
    "callctl_up": ("gauge", {"component"}),
    "callctl_queue_open": ("gauge", {"queue"}),
    "callctl_queue_callers": ("gauge", {"queue"}),
    "callctl_queue_oldest_wait_seconds": ("gauge", {"queue"}),
    "callctl_queue_estimated_wait_seconds": ("gauge", {"queue"}),
    "callctl_queue_calls": ("counter", {"queue", "outcome"}),
    "callctl_queue_wait_seconds": ("histogram", {"queue", "outcome"}),
    "callctl_queue_service_level_ratio": ("gauge", {"queue"}),
    "callctl_queue_service_level_target_ratio": ("gauge", {"queue"}),
    "callctl_queue_handle_seconds": ("histogram", {"queue"}),
    "callctl_agents": ("gauge", {"queue", "state"}),
    "callctl_agents_paused": ("gauge", {"queue", "reason"}),
    "callctl_agent_calls_handled": ("gauge", {"agent"}),
    "callctl_agent_seconds": ("gauge", {"agent", "activity"}),
    "callctl_agent_paused_seconds": ("gauge", {"agent", "reason"}),
    "callctl_agent_occupancy_ratio": ("gauge", {"agent"}),
    "callctl_dialer_calls": ("counter", {"campaign", "result"}),
    "callctl_dialer_lines_active": ("gauge", {"campaign"}),
    "callctl_dialer_dial_level": ("gauge", {"campaign"}),
    "callctl_dialer_abandon_ratio": ("gauge", {"campaign", "window"}),
    "callctl_dialer_leads": ("gauge", {"campaign", "state"}),
    "callctl_dialer_agent_occupancy_ratio": ("gauge", {"campaign"}),
    "callctl_dialer_answer_to_agent_seconds": ("histogram", {"campaign"}),
    "callctl_dialer_agents_covered": ("gauge", set()),
    "callctl_recordings": ("counter", {"result"}),
    "callctl_recording_bytes": ("counter", set()),
    "callctl_ami_events": ("counter", {"event"}),
    "callctl_event_processing_seconds": ("histogram", set()),
}


def sales_queue(callers: int = 2) -> QueueGauges:
    return QueueGauges(
        queue="sales", open=True, callers=callers, oldest_wait_s=42.0, estimated_wait_s=30.0,
        service_level_ratio=0.85, service_level_target_ratio=0.8,
        agents_by_state={AgentState.AVAILABLE: 3, AgentState.ON_CALL: 2, AgentState.PAUSED: 1},
        paused_by_reason={"lunch": 1},
    )


def spring_campaign() -> DialerGauges:
    return DialerGauges(
        campaign="spring", lines_active=4, dial_level=1.5, occupancy_ratio=0.82,
        abandon_ratio_by_window={"1h": 0.02, "24h": 0.027}, leads_by_state={"new": 90, "done": 10},
    )


def build_metrics(
    queues: Sequence[QueueGauges] = (), dialers: Sequence[DialerGauges] = ()
) -> Metrics:
    async def components() -> ComponentUp:  # providers may be async (store reads)
        return ComponentUp(ami=True, ari=False, store=True)

    agent = AgentGauges("1001", 3, {"logged_in": 3600.0, "talking": 900.0}, {"lunch": 600.0},
                        0.3)
    providers = SnapshotProviders(
        components=components, queues=lambda: list(queues), dialers=lambda: list(dialers),
        agents=lambda: [agent],
    )
    return Metrics(providers, queues=["sales", "support"], campaigns=["spring"])


async def scrape(metrics: Metrics) -> dict[str, tuple[str, list[Sample]]]:
    text = (await metrics.render()).decode()
    return {f.name: (f.type, f.samples) for f in text_string_to_metric_families(text)}


def value(samples: list[Sample], name: str, **labels: str) -> float:
    matching = [s.value for s in samples if s.name == name and s.labels == labels]
    assert len(matching) == 1, f"{name}{labels}: {len(matching)} samples"
    return matching[0]


async def feed_events(metrics: Metrics) -> None:
    metrics.call_outcome("sales", "answered", 12.0)
    metrics.call_outcome("sales", "abandoned", 70.0)
    metrics.handle_time("sales", 240.0)
    metrics.dialer_result("spring", "human")
    metrics.answer_to_agent("spring", 0.8)
    metrics.recording("saved", 160_044)
    metrics.recording("failed")
    metrics.ami_event("QueueCallerJoin")
    with metrics.event_processing():
        pass


async def test_every_contract_metric_has_its_type_and_labels() -> None:
    metrics = build_metrics([sales_queue()], [spring_campaign()])
    await feed_events(metrics)
    families = await scrape(metrics)
    for name, (kind, labels) in CONTRACT.items():
        assert name in families, f"{name} missing"
        family_type, samples = families[name]
        assert family_type == kind, name
        series = [s for s in samples if not s.name.endswith("_created")]
        assert series, f"{name} has no series"
        for sample in series:
            assert set(sample.labels) - {"le"} == labels, (name, sample.labels)


async def test_events_increment_counters_and_histograms() -> None:
    metrics = build_metrics()
    await feed_events(metrics)
    metrics.call_outcome("sales", "answered", 25.0)
    metrics.callback_finished("sales", "answered", 400.0)  # from the caller's first arrival
    metrics.callback_finished("sales", "unreached", 900.0)  # not an answer: no answered wait
    families = await scrape(metrics)
    calls = families["callctl_queue_calls"][1]
    assert value(calls, "callctl_queue_calls_total", queue="sales", outcome="answered") == 2
    assert value(calls, "callctl_queue_calls_total", queue="sales", outcome="abandoned") == 1
    wait = families["callctl_queue_wait_seconds"][1]
    answered = {"queue": "sales", "outcome": "answered"}
    assert value(wait, "callctl_queue_wait_seconds_sum", **answered) == 437.0
    assert value(wait, "callctl_queue_wait_seconds_count", **answered) == 3
    assert value(wait, "callctl_queue_wait_seconds_bucket", le="15.0", **answered) == 1
    assert value(wait, "callctl_queue_wait_seconds_bucket", le="300.0", **answered) == 2
    callbacks = families["callctl_callbacks"][1]
    assert value(callbacks, "callctl_callbacks_total", queue="sales", outcome="unreached") == 1
    bytes_total = families["callctl_recording_bytes"][1]
    assert value(bytes_total, "callctl_recording_bytes_total") == 160_044
    recordings = families["callctl_recordings"][1]
    assert value(recordings, "callctl_recordings_total", result="failed") == 1
    events = families["callctl_ami_events"][1]
    assert value(events, "callctl_ami_events_total", event="QueueCallerJoin") == 1
    processing = families["callctl_event_processing_seconds"][1]
    assert value(processing, "callctl_event_processing_seconds_count") == 1


async def test_declared_queues_and_campaigns_exist_at_zero_before_any_event() -> None:
    families = await scrape(build_metrics())
    calls = families["callctl_queue_calls"][1]
    for outcome in ("answered", "abandoned", "overflowed", "after_hours", "failed"):
        assert value(calls, "callctl_queue_calls_total", queue="support", outcome=outcome) == 0
    dialer = families["callctl_dialer_calls"][1]
    for result in ("human", "machine", "busy", "no_answer", "failed", "abandoned"):
        assert value(dialer, "callctl_dialer_calls_total", campaign="spring", result=result) == 0
    recordings = families["callctl_recordings"][1]
    assert value(recordings, "callctl_recordings_total", result="saved") == 0


async def test_gauges_are_read_from_the_providers_at_each_scrape() -> None:
    snapshots = [[sales_queue(callers=2)]]
    metrics = Metrics(SnapshotProviders(
        components=lambda: ComponentUp(ami=True, ari=True, store=True),
        queues=lambda: snapshots[-1],
        dialers=lambda: [spring_campaign()],
    ))
    first = await scrape(metrics)
    snapshots.append([sales_queue(callers=7)])
    second = await scrape(metrics)
    assert value(first["callctl_queue_callers"][1], "callctl_queue_callers", queue="sales") == 2
    assert value(second["callctl_queue_callers"][1], "callctl_queue_callers", queue="sales") == 7
    agents = second["callctl_agents"][1]
    assert value(agents, "callctl_agents", queue="sales", state="on_call") == 2
    assert value(agents, "callctl_agents", queue="sales", state="paused") == 1
    paused = second["callctl_agents_paused"][1]
    assert value(paused, "callctl_agents_paused", queue="sales", reason="lunch") == 1
    abandon = second["callctl_dialer_abandon_ratio"][1]
    assert value(abandon, "callctl_dialer_abandon_ratio", campaign="spring", window="24h") == 0.027
    assert value(abandon, "callctl_dialer_abandon_ratio", campaign="spring", window="30d") == 0
    up = second["callctl_up"][1]
    assert value(up, "callctl_up", component="ari") == 1


async def test_a_failing_provider_drops_only_its_gauges() -> None:
    def broken() -> list[DialerGauges]:
        raise RuntimeError("store is locked")

    metrics = Metrics(SnapshotProviders(
        components=lambda: ComponentUp(ami=True, ari=True, store=False),
        queues=lambda: [sales_queue()],
        dialers=broken,
    ), campaigns=["spring"])
    families = await scrape(metrics)
    assert families["callctl_dialer_dial_level"][1] == []
    assert value(families["callctl_queue_callers"][1], "callctl_queue_callers", queue="sales") == 2
    dialer = families["callctl_dialer_calls"][1]
    assert value(dialer, "callctl_dialer_calls_total", campaign="spring", result="human") == 0


async def test_two_apps_keep_separate_registries() -> None:
    first, second = build_metrics(), build_metrics()
    first.call_outcome("sales", "answered", 1.0)
    calls = (await scrape(second))["callctl_queue_calls"][1]
    assert value(calls, "callctl_queue_calls_total", queue="sales", outcome="answered") == 0


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
async def test_promtool_accepts_the_exposition() -> None:
    metrics = build_metrics([sales_queue()], [spring_campaign()])
    await feed_events(metrics)
    process = await asyncio.create_subprocess_exec(
        "promtool", "check", "metrics",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(await metrics.render()), timeout=30)
    assert process.returncode == 0, output.decode()
