"""The app's metrics: event counters and histograms, scrape-time gauges, exposition.

One ``Metrics`` per app, with its own ``CollectorRegistry`` (never the global default), so tests
can build several apps side by side. Services call the small typed methods when an event
happens; gauges come from ``SnapshotProviders`` at scrape time (see ``collectors.py``).
Queues, campaigns and recording results are pre-initialised at 0 so every dashboard series
exists from the first scrape.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from controller.asterisk.events import REJECT_REASONS, RejectReason, Source
from controller.callbacks.machine import OUTCOMES as CALLBACK_OUTCOMES
from controller.logs import get_logger
from controller.metrics.collectors import ScrapeSnapshot, SnapshotCollector
from controller.metrics.snapshot import (
    DIALER_RESULTS,
    QUEUE_OUTCOMES,
    RECORDING_RESULTS,
    AgentGauges,
    ComponentUp,
    DialerGauges,
    DialerResult,
    QueueGauges,
    QueueOutcome,
    RecordingResult,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Bucket bounds follow the decisions people make with them: service-level thresholds
# (10-60 s), the 2 s "connected to an agent" rule of the dialer regulations, sub-millisecond
# event handling.
QUEUE_WAIT_BUCKETS = (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200)
HANDLE_BUCKETS = (30, 60, 120, 180, 300, 450, 600, 900, 1200, 1800, 3600)
ANSWER_TO_AGENT_BUCKETS = (0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0, 10.0)
EVENT_PROCESSING_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5)

T = TypeVar("T")
Provider = Callable[[], T | Awaitable[T]]

log = get_logger("metrics")


@dataclass(frozen=True, slots=True)
class SnapshotProviders:
    """Where the gauges come from; each may be a plain or an async function. A feature that
    is not installed shows no series of its own (no queues, no campaigns)."""

    components: Provider[ComponentUp]
    queues: Provider[Sequence[QueueGauges]] = tuple
    dialers: Provider[Sequence[DialerGauges]] = tuple
    agents: Provider[Sequence[AgentGauges]] = tuple


class Metrics:
    """Counters and histograms the services feed, plus the exposition of one scrape."""

    def __init__(
        self,
        providers: SnapshotProviders,
        *,
        queues: Iterable[str] = (),
        campaigns: Iterable[str] = (),
    ) -> None:
        self.registry = CollectorRegistry()
        self._providers = providers
        self._render_lock = asyncio.Lock()
        self._gauges = SnapshotCollector()
        self.registry.register(self._gauges)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        reg = self.registry
        self._queue_calls = Counter(
            "callctl_queue_calls_total",
            "Inbound calls that left the queue, by outcome (one outcome per call).",
            ["queue", "outcome"], registry=reg,
        )
        self._queue_wait = Histogram(
            "callctl_queue_wait_seconds",
            "Seconds from joining the queue to the outcome (answer, abandon, overflow...);"
            " an answered callback counts as answered, from its caller's first arrival.",
            ["queue", "outcome"], buckets=QUEUE_WAIT_BUCKETS, registry=reg,
        )
        self._queue_handle = Histogram(
            "callctl_queue_handle_seconds",
            "Seconds an agent spent on one answered call: talk time + wrap-up time.",
            ["queue"], buckets=HANDLE_BUCKETS, registry=reg,
        )
        self._queue_dispositions = Counter(
            "callctl_queue_dispositions_total",
            "Queue calls an agent gave a disposition to (the disposition code and a key), by"
            " its name.",
            ["queue", "disposition"], registry=reg,
        )
        self._dialer_calls = Counter(
            "callctl_dialer_calls_total",
            "Outbound calls of the campaign by result (one result per call attempt).",
            ["campaign", "result"], registry=reg,
        )
        self._dialer_dispositions = Counter(
            "callctl_dialer_dispositions_total",
            "Calls of the campaign an agent gave a disposition to (a key in wrap-up), by its"
            " name.",
            ["campaign", "disposition"], registry=reg,
        )
        self._answer_to_agent = Histogram(
            "callctl_dialer_answer_to_agent_seconds",
            "Seconds from the customer's answer (human) to the agent being connected.",
            ["campaign"], buckets=ANSWER_TO_AGENT_BUCKETS, registry=reg,
        )
        self._dialer_agents_covered = Gauge(
            "callctl_dialer_agents_covered",
            "Agents of dialer workers whose lease ran out, seated by this controller's worker"
            " until theirs is back.",
            registry=reg,
        )
        self._recordings = Counter(
            "callctl_recordings_total",
            "Recordings finished, by result (saved: file kept; failed: no usable file).",
            ["result"], registry=reg,
        )
        self._recording_bytes = Counter(
            "callctl_recording_bytes_total", "Bytes of saved recording files.", registry=reg,
        )
        self._ami_events = Counter(
            "callctl_ami_events_total", "AMI events received, by event name.", ["event"],
            registry=reg,
        )
        rejected = "Asterisk events dropped as malformed or unknown, by source and reason."
        self._events_rejected = Counter(
            "callctl_events_rejected_total", rejected, ["source", "reason"], registry=reg
        )
        failures = "Failures of a supervised long-running task (each one is restarted)."
        self._task_failures = Counter(
            "callctl_task_failures_total", failures, ["task"], registry=reg
        )
        self._event_processing = Histogram(
            "callctl_event_processing_seconds",
            "Seconds spent handling one Asterisk event (AMI or ARI) in the controller.",
            buckets=EVENT_PROCESSING_BUCKETS, registry=reg,
        )
        self._callbacks = Counter(
            "callctl_callbacks_total",
            "Queue callbacks that ended, by outcome (answered, unreached, expired, cancelled).",
            ["queue", "outcome"], registry=reg,
        )
        self._callbacks_pending = Gauge(
            "callctl_callbacks_pending",
            "Queue callbacks booked and not ended yet (waiting, queued, dialing, retrying).",
            ["queue"], registry=reg,
        )
        self._callback_offers = Counter(
            "callctl_callback_offers_total",
            "Callback offers the controller played to waiting callers (offer_wait_above queues;"
            " app_queue's periodic offers are not counted).",
            ["queue"], registry=reg,
        )
        for result in RECORDING_RESULTS:
            self._recordings.labels(result)
        for source in ("ami", "ari"):
            for reason in REJECT_REASONS:
                self._events_rejected.labels(source, reason)
        for queue in queues:
            self.declare_queue(queue)
        for campaign in campaigns:
            self.declare_campaign(campaign)

    def provide(
        self,
        *,
        queues: Provider[Sequence[QueueGauges]] | None = None,
        dialers: Provider[Sequence[DialerGauges]] | None = None,
        agents: Provider[Sequence[AgentGauges]] | None = None,
    ) -> None:
        """A feature installs its scrape-time gauges (the inbound queues, the campaigns, the
        agents)."""
        if queues is not None:
            self._providers = replace(self._providers, queues=queues)
        if dialers is not None:
            self._providers = replace(self._providers, dialers=dialers)
        if agents is not None:
            self._providers = replace(self._providers, agents=agents)

    def declare_queue(self, queue: str) -> None:
        """Create the queue's counter, histogram and callback series at 0 (idempotent); every
        queue's, with or without callbacks, so the dashboard shows zeros rather than gaps."""
        for outcome in QUEUE_OUTCOMES:
            self._queue_calls.labels(queue, outcome)
            self._queue_wait.labels(queue, outcome)
        self._queue_handle.labels(queue)
        for callback_outcome in CALLBACK_OUTCOMES:
            self._callbacks.labels(queue, callback_outcome.value)
        self._callbacks_pending.labels(queue)
        self._callback_offers.labels(queue)

    def declare_queue_dispositions(self, queue: str, dispositions: Iterable[str]) -> None:
        """Create the series of a queue's dispositions at 0 (idempotent): ``increase()``
        counts a series' first disposition only if the series was there before it."""
        for disposition in dispositions:
            self._queue_dispositions.labels(queue, disposition)

    def declare_campaign(self, campaign: str, dispositions: Iterable[str] = ()) -> None:
        """Create the campaign's counter and histogram series at 0 (idempotent), its
        dispositions' included."""
        for result in DIALER_RESULTS:
            self._dialer_calls.labels(campaign, result)
        self._answer_to_agent.labels(campaign)
        for disposition in dispositions:
            self._dialer_dispositions.labels(campaign, disposition)

    def call_outcome(self, queue: str, outcome: QueueOutcome, wait_s: float) -> None:
        """One inbound call left ``queue`` with ``outcome`` after waiting ``wait_s``."""
        self._queue_calls.labels(queue, outcome).inc()
        self._queue_wait.labels(queue, outcome).observe(wait_s)

    def callback_finished(self, queue: str, outcome: str, waited_s: float) -> None:
        """A callback of ``queue`` ended with ``outcome``, ``waited_s`` after its caller first
        arrived; an answered one is the caller's answer: its wait counts with the queue's
        answered waits (its call was counted ``callback`` when it booked)."""
        self._callbacks.labels(queue, outcome).inc()
        if outcome == "answered":
            self._queue_wait.labels(queue, "answered").observe(waited_s)

    def callback_offered(self, queue: str) -> None:
        self._callback_offers.labels(queue).inc()

    def callbacks_pending(self, queue: str, count: int) -> None:
        self._callbacks_pending.labels(queue).set(count)

    def handle_time(self, queue: str, seconds: float) -> None:
        """An answered call of ``queue`` ended its wrap-up: talk + wrap-up seconds."""
        self._queue_handle.labels(queue).observe(seconds)

    def queue_disposition(self, queue: str, disposition: str) -> None:
        self._queue_dispositions.labels(queue, disposition).inc()

    def dialer_result(self, campaign: str, result: DialerResult) -> None:
        self._dialer_calls.labels(campaign, result).inc()

    def dialer_disposition(self, campaign: str, disposition: str) -> None:
        self._dialer_dispositions.labels(campaign, disposition).inc()

    def answer_to_agent(self, campaign: str, seconds: float) -> None:
        self._answer_to_agent.labels(campaign).observe(seconds)

    def dialer_agents_covered(self, count: int) -> None:
        self._dialer_agents_covered.set(count)

    def recording(self, result: RecordingResult, size_bytes: int = 0) -> None:
        """A recording finished; ``size_bytes`` of a saved file count towards the byte total."""
        self._recordings.labels(result).inc()
        if size_bytes:
            self._recording_bytes.inc(size_bytes)

    def ami_event(self, name: str) -> None:
        self._ami_events.labels(name).inc()

    def event_rejected(self, source: Source, reason: RejectReason) -> None:
        self._events_rejected.labels(source, reason).inc()

    def declare_task(self, task: str) -> None:
        """Create the supervised task's failure series at 0 (idempotent)."""
        self._task_failures.labels(task)

    def task_failed(self, task: str) -> None:
        self._task_failures.labels(task).inc()

    @contextmanager
    def event_processing(self) -> Iterator[None]:
        """Time the handling of one event: ``with metrics.event_processing(): ...``."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self._event_processing.observe(time.perf_counter() - started)

    async def render(self) -> bytes:
        """The exposition of one scrape: gather the snapshots, then render every family.

        The text is produced in a worker thread so AMI events keep flowing meanwhile. A failing
        provider is logged and its gauges are left out of this scrape; counters and
        the other gauges are still served.
        """
        components, queues, dialers, agents = await asyncio.gather(
            _call(self._providers.components, "components"),
            _call(self._providers.queues, "queues"),
            _call(self._providers.dialers, "dialers"),
            _call(self._providers.agents, "agents"),
        )
        async with self._render_lock:  # one snapshot per exposition
            self._gauges.set_snapshot(ScrapeSnapshot(components, queues, dialers, agents))
            # ~10 µs per sample in pure Python (tens of ms for a large site): keep it off the
            # loop; prometheus_client's values are lock-protected against concurrent updates
            return await asyncio.to_thread(generate_latest, self.registry)


async def _call(provider: Provider[T], name: str) -> T | None:
    try:
        value = provider()
        if inspect.isawaitable(value):
            value = await value
    except Exception as error:
        log.warning("metrics.provider_failed", provider=name, error=repr(error))
        return None
    return value
