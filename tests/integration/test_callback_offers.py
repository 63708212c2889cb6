"""The callback offer on the estimated wait, on the real Asterisk.

One agent talks to a first caller; with the queue's default handle time of 60 s the next caller
(position 1) is estimated to wait at most 60 s and the one after it (position 2) about 120 s.
With ``offer_wait_above = 90`` only the second is offered: the controller whispers the offer
into its channel while it stays in the queue (Asterisk's ChanSpyStart names the channel), and
its DTMF 1 books the callback like app_queue's periodic offer.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from controller.app import Controller
from controller.asterisk.events import ChanSpyStart
from controller.state.model import AgentState
from testbed.asterisk import AsteriskInstance
from testbed.sipp import Sipp, SippPool

from .harness import Api, running_controller, wait_for
from .test_agent_features import scrape, value
from .test_callbacks import callback_queue, callbacks_of, setup
from .test_inbound import login, logout_all, unique_queue, watch_events

NEAR = "0441234569"  # position 1: about to be answered
FAR = "0441234568"  # position 2


@pytest.mark.timeout(120)
async def test_only_a_caller_with_a_long_estimated_wait_is_offered_and_books_where_it_waits(
    asterisk: AsteriskInstance, controller_config_file: Path, sipp: SippPool, tmp_path: Path
) -> None:
    q = unique_queue("cboffer")
    queue_text = callback_queue(q, offer_after=0, offer_every=30, offer_wait_above=90).replace(
        "wrapup = 0\n", "wrapup = 0\ndefault_handle_time = 60\n")
    config = setup(controller_config_file, tmp_path / "c.toml", asterisk, queue_text, q)
    sipp.agent_phones(RING_S="1", TALK_MS="60000")
    api = Api(config)
    async with running_controller(config) as running:
        controller = running.controller
        events = watch_events(controller)

        def waiting(caller: str) -> str | None:
            queue = controller.model.queues.get(q)
            found = [c.uniqueid for c in queue.callers.values() if c.caller_num == caller] if (
                queue) else []
            return found[0] if found else None

        def agent_state() -> AgentState | None:
            member = controller.model.queues[q].members.get("PJSIP/1001")
            return member.state(controller.model.now()) if member else None

        calls: list[Sipp] = []
        try:
            await login(api, "1001", q)
            calls.append(sipp.call("5000", HOLD_MS="60000"))
            await wait_for(lambda: agent_state() is AgentState.ON_CALL, 15, "1001 on a call")
            calls.append(sipp.call("5000", CALLER=NEAR, HOLD_MS="60000"))
            near_id = await wait_for(lambda: waiting(NEAR), 10, "the near caller in the queue")
            far = sipp.dtmf_call("5000", "6000:1", CALLER=FAR, HOLD_MS="7000")
            far_id = await wait_for(lambda: waiting(FAR), 10, "the far caller in the queue")
            [(offered_at, _)] = await wait_for(
                lambda: events.of(ChanSpyStart, spyee_uniqueid=far_id), 5,
                "the offer whispered to the far caller")
            assert offered_at - controller.model.queues[q].callers[far_id].joined_at < 3
            await wait_for(lambda: _booked(controller, q), 15, "the far caller's callback")
            stats = await asyncio.to_thread(far.wait, 20)
            assert stats.successful == 1, far.output()
            assert controller.model.queues[q].callers.get(near_id) is not None  # still waiting
            [row] = await callbacks_of(controller, q)
            shown = await scrape(api)
        finally:
            for call in calls:
                call.stop()
            await logout_all(api)
    assert row["phone"] == "+41441234568"
    assert events.of(ChanSpyStart, spyee_uniqueid=near_id) == []  # never offered
    assert value(shown, "callctl_callback_offers_total", queue=q) == 1


async def _booked(controller: Controller, queue: str) -> bool:
    return bool(await callbacks_of(controller, queue))
