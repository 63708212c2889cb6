"""Callbacks: the callback service (Stasis entries ``callback``, ``callback-agent`` and
``callback-customer``, its ticker and restart reconciliation), the offers on the estimated wait
and ``/api/v1/callbacks``."""

from __future__ import annotations

from aiohttp import web

from controller.api import callbacks, keys
from controller.callbacks.offers import CallbackOffers
from controller.callbacks.service import CallbackService
from controller.features.core import Core
from controller.inbound.router import InboundRouter


def install(app: web.Application, core: Core, router: InboundRouter) -> CallbackService:
    inbound = core.config.inbound
    service = CallbackService(
        inbound, core.ami, core.ari, core.model, core.store, core.metrics, router,
        owner=core.config.node_name, overrides=app[keys.SCHEDULE_OVERRIDES].current,
    )
    core.sync.add_listener(service.on_ami_event)
    core.sync.add_resync_hook(service.reconcile)
    core.on_stasis("callback", service.on_booking_stasis)
    core.on_stasis("callback-agent", service.on_agent_stasis)
    core.on_stasis("callback-customer", service.on_customer_stasis)
    core.supervise("callbacks", service.run)
    offers = CallbackOffers(inbound, core.ami, core.model, core.metrics, router.snapshot_of)
    if offers.queues:  # queues that offer on the estimated wait
        core.sync.add_listener(offers.on_ami_event)
        core.supervise("callback-offers", offers.run)
    app[keys.CALLBACKS] = service
    callbacks.add_routes(app)
    return service
