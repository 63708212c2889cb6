"""The attempt ledger in AstDB: what survives a controller crash about each customer call.

Every customer leg carries a hangup handler (``callctl-attempt-end`` in
``dialplans/dialer.conf``) that writes ``<cause>,<answered>,<seen>`` under
``callctl_attempt/<attempt id>``; ``seen`` is what the controller saw (``human``: connected to an
agent, ``machine``, ``abandoned``). After Stasis, Asterisk refuses that DB() write (escalations
inhibited), so the controller writes the record itself when the call is answered (``,1,``) and
when it is connected (``,1,human``). The record is deleted once the result is stored. This module
is the one place that knows the format (the dialplan writes the same three fields).
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.asterisk.ami import AmiDisconnected, AmiError, AmiTimeout
from controller.dialer.policy import Result, classify_hangup
from controller.dialer.ports import AmiPort

FAMILY = "callctl_attempt"


@dataclass(frozen=True, slots=True)
class LedgerRecord:
    cause: int | None
    answered: bool
    seen: str  # "", "human", "machine" or "abandoned"

    @classmethod
    def parse(cls, value: str) -> LedgerRecord:
        raw_cause, raw_answered, seen = ([*value.split(","), "", ""])[:3]
        return cls(parse_int(raw_cause), raw_answered == "1", seen.strip())

    def render(self) -> str:
        cause = "" if self.cause is None else str(self.cause)
        return f"{cause},{int(self.answered) if self.answered else ''},{self.seen}"


ANSWERED = LedgerRecord(None, True, "")
CONNECTED = LedgerRecord(None, True, "human")


def settled_result(record: LedgerRecord | None, cause: int | None, channel_seen: bool) -> Result:
    """What an attempt came to, from its record and what this worker saw of its channel.

    ``cause`` (from the Hangup this worker saw) wins over the record's; ``channel_seen`` means a
    channel existed (adopted after a restart): such an attempt was dialed even without a record.
    Nothing known and no channel: it was never dialed (``NOT_DIALED``)."""
    if record is None or (record.cause is None and not record.answered and not record.seen):
        if not channel_seen and cause is None:
            return Result.NOT_DIALED
        record = LedgerRecord(None, False, "")
    return classify_hangup(
        cause if cause is not None else record.cause,
        answered=record.answered,
        machine=record.seen == "machine",
        agent_connected=record.seen == "human",
    )


def parse_int(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


class AstDbLedger:
    """The ledger over AMI (DBPut / DBGet / DBDel), in the AstDB ``family`` (the dialer's
    attempts by default; callbacks keep their attempts in their own)."""

    def __init__(self, ami: AmiPort, family: str = FAMILY) -> None:
        self._ami = ami
        self._family = family

    async def put(self, attempt_id: str, record: LedgerRecord) -> None:
        await self._ami.action("DBPut", Family=self._family, Key=attempt_id, Val=record.render())

    async def read(self, attempt_id: str) -> LedgerRecord | None:
        """The attempt's record, None when there is none; raises ``AmiError`` when AMI cannot
        tell (disconnected, no answer): "no record" must never be guessed, it releases a lead."""
        try:
            answer = await self._ami.action(
                "DBGet", as_list=None, Family=self._family, Key=attempt_id
            )
        except (AmiDisconnected, AmiTimeout):
            raise
        except AmiError:  # "Database entry not found"
            return None
        # DBGet answers with a DBGetResponse event carrying ``Val`` (an event list in 22)
        for message in answer if isinstance(answer, list) else [answer]:
            if "Val" in message:
                return LedgerRecord.parse(str(message["Val"]))
        return None

    async def delete(self, attempt_id: str) -> None:
        await self._ami.action("DBDel", Family=self._family, Key=attempt_id)
