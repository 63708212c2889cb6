"""Inbound: the router (Stasis entry ``inbound``, its ticker), the queues' gauges, the
schedule overrides, this node's queue views for the site, ``/api/v1/queues``, ``/api/v1/calls``
and ``/api/v1/schedules``."""

from __future__ import annotations

from aiohttp import web

from controller.api import calls, keys, queues, schedules
from controller.features.core import Core
from controller.inbound.gauges import QueueGaugeProvider
from controller.inbound.overrides import ScheduleOverrides
from controller.inbound.router import InboundRouter
from controller.nodes.queue_views import NodeQueueViewRepository, QueueViewPublisher
from controller.recording.recorder import Recorder


def install(app: web.Application, core: Core, recorder: Recorder) -> InboundRouter:
    config = core.config
    overrides = ScheduleOverrides(core.store, config.inbound.schedules)
    router = InboundRouter(
        config.inbound, core.ami, core.ari, core.model, core.store, core.metrics, recorder,
        core.writes, config.node_name, overrides=overrides.current,
    )
    core.sync.add_listener(router.on_ami_event)
    core.on_stasis("inbound", router.on_stasis_start)
    core.supervise("inbound", router.run)
    core.supervise("schedule-overrides", overrides.run)
    publisher = QueueViewPublisher(config.node_name, list(config.inbound.queues), core.model,
                                   core.sync, NodeQueueViewRepository(core.store))
    core.supervise("queue-views", publisher.run)
    core.metrics.provide(
        queues=QueueGaugeProvider(
            config.inbound, core.model, router, core.store,
            config.metrics.service_level_window, overrides.current,
        )
    )
    app[keys.MODEL] = core.model
    app[keys.SCHEDULE_OVERRIDES] = overrides
    queues.add_routes(app)
    calls.add_routes(app)
    schedules.add_routes(app)
    return router
