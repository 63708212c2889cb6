"""Prometheus exposition of the controller.

Counters and histograms are owned by one ``Metrics`` object per app and incremented by the
services when something happens; gauges are never set by anyone: a scrape-time collector asks
provider callables for immutable snapshots (``snapshot.py``) and turns them into samples, so a
gauge can never drift from the live model or the store.
"""

from controller.metrics.registry import Metrics, SnapshotProviders
from controller.metrics.service_level import service_level_ratio
from controller.metrics.snapshot import ComponentUp, DialerGauges, QueueGauges

__all__ = [
    "ComponentUp",
    "DialerGauges",
    "Metrics",
    "QueueGauges",
    "SnapshotProviders",
    "service_level_ratio",
]
