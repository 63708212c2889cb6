"""How long one /metrics scrape takes to render on a large contact center.

50 queues, 500 agents (10 per queue, spread over the five states), 10 campaigns, every
counter and histogram series populated. The scrape runs on the controller's one asyncio loop,
so besides the render time it reports the longest stall of that loop while rendering
(the text itself is produced in a worker thread).
"""

from __future__ import annotations

import asyncio
import statistics
import time

from controller.metrics import ComponentUp, DialerGauges, Metrics, QueueGauges, SnapshotProviders
from controller.metrics.snapshot import AGENT_STATES, DIALER_RESULTS, QUEUE_OUTCOMES

QUEUES = 50
AGENTS = 500
CAMPAIGNS = 10
RENDERS = 200


def _queues() -> list[QueueGauges]:
    per_queue = AGENTS // QUEUES
    states = {state: per_queue // len(AGENT_STATES) for state in AGENT_STATES}
    return [
        QueueGauges(f"queue{i}", True, i % 7, 12.0 + i, 30.0, 0.8, 0.8, states)
        for i in range(QUEUES)
    ]


def _dialers() -> list[DialerGauges]:
    return [
        DialerGauges(f"campaign{i}", 12, 1.8, 0.85, {"1h": 0.01, "24h": 0.02, "30d": 0.025},
                     {"new": 1000, "dialing": 12, "done": 300, "failed": 20})
        for i in range(CAMPAIGNS)
    ]


def _metrics() -> Metrics:
    queues, dialers = _queues(), _dialers()
    metrics = Metrics(
        SnapshotProviders(
            components=lambda: ComponentUp(ami=True, ari=True, store=True),
            queues=lambda: queues,
            dialers=lambda: dialers,
        ),
        queues=[q.queue for q in queues],
        campaigns=[d.campaign for d in dialers],
    )
    for q in queues:
        for outcome in QUEUE_OUTCOMES:
            metrics.call_outcome(q.queue, outcome, 17.0)
        metrics.handle_time(q.queue, 240.0)
    for d in dialers:
        for result in DIALER_RESULTS:
            metrics.dialer_result(d.campaign, result)
        metrics.answer_to_agent(d.campaign, 0.7)
    for event in ("Newchannel", "Hangup", "QueueCallerJoin", "AgentConnect", "BridgeEnter"):
        metrics.ami_event(event)
    return metrics


async def _timings(metrics: Metrics, renders: int) -> tuple[list[float], int, float]:
    """Render times, exposition size, and the longest the loop went without running a task."""
    timings, size, longest_stall = [], 0, 0.0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal longest_stall
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            longest_stall, last = max(longest_stall, now - last), now

    ticking = asyncio.create_task(ticker())
    for _ in range(renders):
        started = time.perf_counter()
        size = len(await metrics.render())
        timings.append(time.perf_counter() - started)
    done.set()
    await ticking
    return timings, size, longest_stall


def run(renders: int = RENDERS) -> list[dict[str, object]]:
    metrics = _metrics()
    timings, size, longest_stall = asyncio.run(_timings(metrics, renders))
    timings.sort()
    return [{
        "scenario": f"{QUEUES} queues, {AGENTS} agents, {CAMPAIGNS} campaigns",
        "renders": renders,
        "median_ms": round(statistics.median(timings) * 1000, 2),
        "p99_ms": round(timings[min(len(timings) - 1, int(len(timings) * 0.99))] * 1000, 2),
        "bytes": size,
        "loop_max_stall_ms": round(longest_stall * 1000, 2),
    }]


if __name__ == "__main__":
    for row in run():
        print("  ".join(f"{key}={value}" for key, value in row.items()))
