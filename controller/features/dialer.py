"""Dialer: the campaign runner (Stasis entries ``dialer`` and ``agent``, its loop, its gauges)
and ``/api/v1/campaigns``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from controller.api import campaigns
from controller.asterisk.events import (
    AmiEvent,
    CallctlAmd,
    Hangup,
    OriginateResponse,
    StasisStart,
)
from controller.dialer.repository import DialerRepository
from controller.dialer.runner import DialerService
from controller.features.core import Core
from controller.recording.recorder import Recorder


def install(app: web.Application, core: Core, recorder: Recorder) -> DialerService:
    inbound = core.config.inbound
    dialer = DialerService(
        core.ami,
        core.ari,
        core.model,
        DialerRepository(core.store),
        core.metrics,
        worker=core.config.dialer.worker_id,
        agents_of_queue=lambda queue: (
            tuple(m.agent for m in inbound.queues[queue].members)
            if queue in inbound.queues
            else ()
        ),
        recorder=recorder,
    )

    def on_ami_event(event: AmiEvent) -> None:
        message = legacy_ami_message(event)
        if message is not None:
            dialer.on_ami_event(message)

    core.sync.add_listener(on_ami_event)
    core.sync.add_resync_hook(dialer.reconcile)
    core.on_stasis("dialer", lambda event: dialer.on_customer_stasis(legacy_stasis_start(event)))
    core.on_stasis("agent", lambda event: dialer.on_agent_stasis(legacy_stasis_start(event)))
    core.supervise("dialer", dialer.run)
    core.metrics.provide(dialers=dialer.gauges)
    campaigns.add_routes(app)
    return dialer


# -- temporary adapter: the runner still reads raw AMI headers and ARI JSON -------------------
# Until it takes the typed events, it gets back exactly the keys it reads, rebuilt from them.


def legacy_ami_message(event: AmiEvent) -> dict[str, str] | None:
    """The raw AMI headers ``DialerService.on_ami_event`` reads, or None if it reads none."""
    match event:
        case Hangup():
            return {"Event": "Hangup", "Uniqueid": event.uniqueid, "Cause": str(event.cause)}
        case CallctlAmd():
            return {"Event": "UserEvent", "UserEvent": "CallctlAmd", "Attempt": event.attempt}
        case OriginateResponse():
            reason = "" if event.reason is None else str(event.reason)
            return {
                "Event": "OriginateResponse",
                "ActionID": event.action_id,
                "Response": event.response,
                "Reason": reason,
            }
    return None


def legacy_stasis_start(event: StasisStart) -> dict[str, Any]:
    """The ARI JSON ``on_customer_stasis`` / ``on_agent_stasis`` read."""
    channel = event.channel
    return {
        "type": "StasisStart",
        "args": list(event.args),
        "channel": {"id": channel.id, "name": channel.name, "state": channel.state},
    }
