"""The waits a queue's service level counts: its inbound calls' and its callbacks'.

A caller who booked a callback left the queue (outcome ``callback``, counted neither way);
the callback goes on with the caller's wait, so it counts from the caller's first arrival to
its end (``CallbackRepository.waits``).
"""

from __future__ import annotations

from datetime import datetime

from controller.callbacks.repository import CallbackRepository
from controller.inbound.repository import InboundCallRepository, QueueWaits
from controller.store.base import Database


async def service_level_waits(store: Database, ended_since: datetime) -> dict[str, QueueWaits]:
    """Per queue: the answered and abandoned waits of the calls and callbacks ended since
    ``ended_since``."""
    waits = await InboundCallRepository(store).waits(ended_since)
    for queue, of_callbacks in (await CallbackRepository(store).waits(ended_since)).items():
        merged = waits.setdefault(queue, QueueWaits())
        merged.answered.extend(of_callbacks.answered)
        merged.abandoned.extend(of_callbacks.abandoned)
    return waits
