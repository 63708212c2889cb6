"""Agents: login, logout and pause over ``/api/v1/agents`` and the phones' feature codes, all
through one status machine (``agents/service.py``), and the dispositions agents key for queue
calls; kept in step with Asterisk's queue members after every resync and when a member
appears."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp import web

from controller.agents.dialplan import STASIS_ENTRY, SUPERVISE_ENTRY
from controller.agents.dispositions import DispositionService
from controller.agents.gauges import AgentGaugeProvider
from controller.agents.service import AgentStatusService
from controller.agents.supervision import SupervisionService
from controller.api import agents, keys
from controller.asterisk.ami import AmiClient
from controller.asterisk.ari import AriClient, AriError
from controller.features.core import Core
from controller.inbound.agents import AgentService, QueueMembership
from controller.logs import get_logger

log = get_logger("agents")


class AmiDeviceStates:
    """``Custom:`` device states over AMI (Asterisk keeps them in astdb)."""

    def __init__(self, ami: AmiClient) -> None:
        self._ami = ami

    async def set_device_state(self, device: str, in_use: bool) -> None:
        await self._ami.action("Setvar", Variable=f"DEVICE_STATE({device})",
                               Value="INUSE" if in_use else "NOT_INUSE")


class AriFeatureChannels:
    """A feature code's channel: its variables (sound, channel to spy on), then back to the
    dialplan's next priority after Stasis()."""

    def __init__(self, ari: AriClient) -> None:
        self._ari = ari

    async def continue_with(self, channel_id: str, variables: dict[str, str]) -> None:
        try:
            for name, value in variables.items():
                await self._ari.set_variable(channel_id, name, value)
            await self._ari.request("POST", f"/channels/{channel_id}/continue")
        except AriError as error:  # the phone hung up first: nothing left to tell it
            log.info("agents.feature_channel_gone", channel=channel_id, error=str(error))


def install(app: web.Application, core: Core) -> AgentService:
    config = core.config
    service = AgentService(
        core.ami,
        core.store,
        core.model,
        lambda agent_id: [QueueMembership(q, p) for q, p in config.queues_of_agent(agent_id)],
        config.node_name,
    )
    channels = AriFeatureChannels(core.ari)
    model = core.model

    def clock() -> datetime:
        return datetime.fromtimestamp(model.now(), UTC)

    for queue, queue_config in config.inbound.queues.items():
        core.metrics.declare_queue_dispositions(
            queue, (disposition.name for disposition in queue_config.dispositions.values()))
    dispositions = DispositionService(
        core.store, config.inbound, timedelta(minutes=config.agents.disposition_minutes),
        core.metrics, clock)
    status = AgentStatusService(config.agents, service, core.store, AmiDeviceStates(core.ami),
                                channels, dispositions, agent_ids=tuple(config.agent_accounts),
                                clock=clock)

    async def nodes_with_call(agent_id: str) -> list[str]:
        return (await service.calls_elsewhere()).get(agent_id, [])

    supervision = SupervisionService(
        config.agents, core.store, channels, core.ami,
        lambda: [c.latest.channel for c in model.channels.values() if c.state == "Up"],
        clock, nodes_with_call)
    core.sync.add_resync_hook(service.reconcile)
    core.supervise("agents-follow-store", lambda: service.run(lambda: core.sync.synced))
    core.sync.add_resync_hook(status.show_all)
    core.sync.add_listener(service.on_ami_event)
    core.sync.add_listener(status.on_ami_event)
    core.sync.add_listener(supervision.on_ami_event)
    core.on_stasis(STASIS_ENTRY, status.on_feature)
    core.on_stasis(SUPERVISE_ENTRY, supervision.on_stasis)
    app[keys.AGENTS] = service
    core.metrics.provide(agents=AgentGaugeProvider(
        core.store, config, config.metrics.service_level_window, clock))
    app[keys.AGENT_STATUS] = status
    app[keys.SUPERVISION] = supervision
    agents.add_routes(app)
    return service
