"""Nodes: this controller's watch on its Asterisk node (lost: its open calls end
``node_lost``) and its lease, by which a survivor settles the calls of a node whose controller
is gone."""

from __future__ import annotations

from controller.features.core import Core
from controller.inbound.repository import InboundCallRepository
from controller.inbound.router import InboundRouter
from controller.nodes.repository import NodeLeaseRepository
from controller.nodes.service import NodeService


def install(core: Core, router: InboundRouter) -> NodeService:
    config = core.config
    service = NodeService(
        config.node_name, config.node, core.ami, core.model, router,
        InboundCallRepository(core.store), NodeLeaseRepository(core.store), core.metrics,
    )
    core.sync.add_resync_hook(service.on_resync)
    core.supervise("node", service.run)
    return service
