"""Dialer: the campaign runner (Stasis entries ``dialer`` and ``agent``, its loop, its gauges)
and ``/api/v1/campaigns``."""

from __future__ import annotations

from aiohttp import web

from controller.api import campaigns
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
        core.writes,
        worker=core.config.dialer.worker_id,
        agents_of_queue=lambda queue: (
            tuple(m.agent for m in inbound.queues[queue].members)
            if queue in inbound.queues
            else ()
        ),
        recorder=recorder,
        seated_agents=core.config.dialer.agents,
    )

    core.sync.add_listener(dialer.on_ami_event)
    core.sync.add_resync_hook(dialer.reconcile)
    core.on_stasis("dialer", dialer.on_customer_stasis)
    core.on_stasis("agent", dialer.on_agent_stasis)
    core.on_playback_finished(dialer.on_playback_finished)
    core.supervise("dialer", dialer.run)
    # before the supervisor's cleanup stops the ARI client
    app.on_shutdown.append(lambda _app: dialer.release_idle_agents())
    core.metrics.provide(dialers=dialer.gauges)
    campaigns.add_routes(app)
    return dialer
