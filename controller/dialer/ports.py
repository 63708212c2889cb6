"""What the campaign runner needs of Asterisk and of the store: small ports, so a unit test
drives the runner with recording fakes and the live code with the AMI/ARI clients and
``DialerRepository``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from controller.dialer.pacing import LiveAnswer
from controller.dialer.policy import Result
from controller.dialer.repository import (
    AttemptTiming,
    Campaign,
    CampaignHead,
    ClaimedAttempt,
    ConnectedCall,
    DisposedLead,
    FinishedAttempt,
    OpenAttempt,
)
from controller.dialer.settings import Disposition
from controller.dialer.workers import WorkerLease


class AmiPort(Protocol):
    @property
    def connected(self) -> bool: ...

    async def action(self, name: str, as_list: bool | None = False, **params: Any) -> Any: ...

    async def originate(
        self,
        channel: str,
        channel_id: str,
        *,
        context: str | None = None,
        exten: str | None = None,
        priority: int | None = None,
        application: str | None = None,
        data: str | None = None,
        timeout_s: float = 30,
        caller_id: str | None = None,
        variables: Mapping[str, str] | None = None,
        action_id: str | None = None,
    ) -> None: ...


class AriPort(Protocol):
    @property
    def connected(self) -> bool: ...

    @property
    def app(self) -> str: ...

    async def request(
        self, method: str, path: str, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> Any: ...

    async def continue_in_dialplan(
        self, channel_id: str, context: str, extension: str, priority: int = 1
    ) -> None: ...

    async def set_variable(self, channel_id: str, name: str, value: str) -> None: ...

    async def hangup(self, channel_id: str, reason: str = "normal") -> None: ...


class DialerStore(Protocol):
    """The part of ``DialerRepository`` the runner uses."""

    async def campaign_heads(self) -> dict[str, CampaignHead]: ...

    async def campaign(self, name: str) -> Campaign: ...

    async def live_answers(
        self, campaign: str, since: datetime, *, other_than: str | None = None
    ) -> list[LiveAnswer]: ...

    async def pacing_history(self, campaign: str, limit: int) -> list[FinishedAttempt]: ...

    async def claim(
        self, campaign: str, wanted: int, worker: str, now: datetime
    ) -> list[ClaimedAttempt]: ...

    async def attach_channel(self, attempt_id: str, channel: str) -> None: ...

    async def record_connected(self, attempt_id: str, agent_id: str, now: datetime) -> None: ...

    async def connected_calls(
        self, since: datetime, campaign: str | None = None
    ) -> list[ConnectedCall]: ...

    async def record_result(
        self,
        attempt_id: str,
        result: Result,
        now: datetime,
        cause: int | None = None,
        timing: AttemptTiming | None = None,
    ) -> datetime | None: ...

    async def record_disposition(
        self, attempt_id: str, disposition: Disposition, agent_id: str, now: datetime
    ) -> DisposedLead: ...

    async def release_attempt(self, attempt_id: str, now: datetime) -> None: ...

    async def open_attempts(self, campaign: str | None = None) -> list[OpenAttempt]: ...

    async def renew_leases(self, worker: str, agents: Iterable[str], now: datetime) -> None: ...

    async def lapsed_attempts(self, worker: str, now: datetime) -> list[OpenAttempt]: ...

    async def worker_leases(self) -> list[WorkerLease]: ...

    async def abandon_ratios(self, campaign: str, now: datetime) -> dict[str, float]: ...

    async def lead_counts(self, campaign: str) -> dict[str, int]: ...
