"""The ``[agents]`` section: the site's agent accounts, their pause reasons and phone codes.

An agent's id is the number its phone registers as and is dialled at (agent to agent, and in
supervision codes like ``*51<agent>``): digits only, never starting with 9 (the
outside-line prefix of ``from-agents``). Accounts come three ways, merged into one mapping
(``by_id``):

- one table per agent: ``[agents.1001]`` with ``name``, ``queues`` (``{support = 0}``: queue to
  penalty, or a list of queue names at penalty 0), ``team``, ``supervisor``;
- ``[[agents.range]]``: ``first``/``last`` and the same keys for every id in between (``name``
  may hold ``{id}``), for hundreds of seats;
- ``csv = "agents.csv"`` (relative to the config's folder): a header ``id,name,team,
  supervisor,queues`` and one row per agent, queues as ``support:0 sales:1``.

An id declared twice is an error naming both places. The other keys are settings: pause
reasons by code (``[agents.pause_reasons]`` ``1 = "lunch"``), the feature codes, per queue
how many unanswered rings in a row pause an agent with reason ``missed``, and for how many
minutes after a queue call an agent may still key its disposition.
"""

from __future__ import annotations

import csv
import io
import re
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BeforeValidator,
    Field,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from controller.inbound.config import AGENT_ID_PATTERN, CONFIG_DIR_CONTEXT_KEY, AgentId
from controller.section import Section
from controller.state.model import HOLD_REASONS

MISSED_REASON = "missed"
SETTINGS_KEYS = ("csv", "range", "pause_reasons", "feature_codes", "auto_pause",
                 "disposition_minutes")
CSV_COLUMNS = ("id", "name", "team", "supervisor", "queues")

QueueName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$")]
TeamName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]*$")]
Penalty = Annotated[int, Field(ge=0)]
DialCode = Annotated[str, Field(pattern=r"^\*[0-9]{1,4}$")]


def _queues_from_list(value: Any) -> Any:
    """``["support", "sales"]`` is ``{support = 0, sales = 0}``."""
    if isinstance(value, list | tuple):
        return {name: 0 for name in value}
    return value


Queues = Annotated[dict[QueueName, Penalty], BeforeValidator(_queues_from_list)]


class AgentAccount(Section):
    """One agent: who (``name``), the queues it logs in to with their penalty, its team, and
    whether it supervises that team."""

    name: str = Field(default="", max_length=80)
    queues: Queues = {}
    team: TeamName = ""
    supervisor: bool = False


class AgentRange(AgentAccount):
    """Every id from ``first`` to ``last`` (inclusive), each an account with these keys."""

    first: int = Field(ge=10)
    last: int = Field(ge=10)

    @model_validator(mode="after")
    def _ordered(self) -> AgentRange:
        if self.last < self.first:
            raise ValueError(f"last ({self.last}) is below first ({self.first})")
        if self.last - self.first >= 10_000:
            raise ValueError("a range holds at most 10000 agents")
        pattern = re.compile(AGENT_ID_PATTERN)
        bad = next((n for n in range(self.first, self.last + 1) if not pattern.match(str(n))), None)
        if bad is not None:
            raise ValueError(f"{bad} is no agent id (digits, first one 1-8)")
        return self

    def accounts(self) -> dict[str, AgentAccount]:
        fields = self.model_dump(exclude={"first", "last", "name"})
        return {str(number): AgentAccount(name=self.name.replace("{id}", str(number)), **fields)
                for number in range(self.first, self.last + 1)}


class FeatureCodes(Section):
    """What an agent or a supervisor dials on the phone (``*46`` plus a digit: pause with
    that reason; ``*48`` plus a key: what the last queue call came to; ``*51`` plus an agent
    id: listen to that agent's call)."""

    login_toggle: DialCode = "*45"
    pause_toggle: DialCode = "*46"
    end_wrapup: DialCode = "*47"
    disposition: DialCode = "*48"
    listen: DialCode = "*51"
    whisper: DialCode = "*52"
    barge: DialCode = "*53"

    @model_validator(mode="after")
    def _distinct(self) -> FeatureCodes:
        codes = self.model_dump()
        seen: dict[str, str] = {}
        for key, code in codes.items():
            if code in seen:
                raise ValueError(f"{key} and {seen[code]} are both {code}")
            seen[code] = key
        return self


def _csv_accounts(text: str, source: str) -> dict[str, dict[str, Any]]:
    """Rows of an agents CSV as raw account tables; a malformed row names its line."""
    reader = csv.DictReader(io.StringIO(text))
    header = tuple(reader.fieldnames or ())
    if header[:1] != ("id",) or not set(header) <= set(CSV_COLUMNS):
        raise ValueError(f"{source}: the header must be id followed by any of "
                         f"{', '.join(CSV_COLUMNS[1:])}, got {','.join(header) or 'nothing'}")
    rows: dict[str, dict[str, Any]] = {}
    for row in reader:
        line = reader.line_num
        if None in row:
            raise ValueError(f"{source} line {line}: more fields than the header")
        agent = (row.pop("id") or "").strip()
        if agent in rows:
            raise ValueError(f"{source} line {line}: agent {agent} repeats an earlier row")
        account: dict[str, Any] = {k: v.strip() for k, v in row.items() if v and v.strip()}
        if "supervisor" in account:
            account["supervisor"] = account["supervisor"].lower() in ("1", "yes", "true")
        if "queues" in account:
            try:
                account["queues"] = {name: int(penalty or 0) for name, _, penalty in
                                     (item.partition(":") for item in account["queues"].split())}
            except ValueError:
                raise ValueError(f"{source} line {line}: queues must read like "
                                 f"'support:0 sales:1', got {account['queues']!r}") from None
        rows[agent] = {"line": line, **account}
    return rows


def _split_accounts(value: Any, info: ValidationInfo) -> Any:
    """The raw ``[agents]`` table: settings keys stay, every other key is an agent id; the
    CSV file is read into ``csv_accounts``."""
    if not isinstance(value, dict):
        return value
    split: dict[str, Any] = {key: value[key] for key in SETTINGS_KEYS if key in value}
    split["accounts"] = {key: item for key, item in value.items() if key not in SETTINGS_KEYS}
    if isinstance(csv_name := split.get("csv"), str):
        base = Path((info.context or {}).get(CONFIG_DIR_CONTEXT_KEY) or ".")
        try:
            text = (base / csv_name).read_text(encoding="utf-8")
        except OSError as error:
            raise ValueError(f"csv: cannot read {csv_name}: {error.strerror}") from None
        rows = _csv_accounts(text, csv_name)
        split["csv_lines"] = {agent: row.pop("line") for agent, row in rows.items()}
        split["csv_accounts"] = rows
    return split


def _problem(loc: tuple[str | int, ...], message: str) -> ValidationError:
    return ValidationError.from_exception_data("AgentsConfig", [InitErrorDetails(
        type=PydanticCustomError("agents", message), loc=loc, input=None)])


class AgentsConfig(Section):
    """Accounts by id and the settings every agent shares. Validated as a whole by
    ``controller.config``: queues and DIDs live in ``[inbound]``."""

    accounts: dict[AgentId, AgentAccount] = Field(
        default={}, description="the [agents.ID] tables only; every agent is in by_id")
    range: tuple[AgentRange, ...] = ()
    csv: str | None = None
    csv_accounts: dict[AgentId, AgentAccount] = {}
    csv_lines: dict[str, int] = {}
    pause_reasons: dict[Annotated[int, Field(ge=0, le=9)], Annotated[
        str, Field(pattern=r"^[a-z][a-z0-9_-]{0,29}$")]] = {
        1: "lunch", 2: "break", 3: "training"}
    feature_codes: FeatureCodes = FeatureCodes()
    auto_pause: dict[QueueName, Annotated[int, Field(ge=1)]] = Field(
        default={}, description="queue -> unanswered rings in a row that pause the agent "
        f"with reason '{MISSED_REASON}'")
    disposition_minutes: int = Field(
        default=10, ge=1, description="how long after a queue call ends its agent may still "
        "key what it came to (the disposition feature code and a key)")

    @model_validator(mode="before")
    @classmethod
    def _expand(cls, value: Any, info: ValidationInfo) -> Any:
        return _split_accounts(value, info)

    @cached_property
    def by_id(self) -> dict[str, AgentAccount]:
        """Every account, from the tables, the ranges and the CSV, by id in numeric order."""
        merged = dict(self.accounts)
        for block in self.range:
            merged |= block.accounts()
        merged |= self.csv_accounts
        return dict(sorted(merged.items(), key=lambda item: int(item[0])))

    @model_validator(mode="after")
    def _declared_once(self) -> AgentsConfig:
        where = {agent: f"[agents.{agent}]" for agent in self.accounts}
        for index, block in enumerate(self.range):
            for agent in block.accounts():
                if agent in where:
                    raise _problem(("range", index),
                                   f"declares agent {agent}, already {where[agent]}")
                where[agent] = f"range[{index}]"
        for agent, line in self.csv_lines.items():
            if agent in where:
                raise _problem(("csv",), f"{self.csv} line {line} declares agent {agent}, "
                                         f"already {where[agent]}")
        return self

    @model_validator(mode="after")
    def _reasons_distinct(self) -> AgentsConfig:
        names = list(self.pause_reasons.values())
        for automatic in (MISSED_REASON, *HOLD_REASONS):
            if automatic in names:
                raise ValueError(f"pause reason '{automatic}' is an automatic one; pick "
                                 "another name")
        if len(set(names)) != len(names):
            raise ValueError("pause_reasons: a name is given to two codes")
        return self

    def ids(self) -> tuple[str, ...]:
        return tuple(self.by_id)

    def team_supervisors(self, agent_id: str) -> tuple[str, ...]:
        """The supervisors that may listen to, whisper to, barge in on, pause or log out
        ``agent_id``: every supervisor of its team (none for an agent without a team)."""
        accounts = self.by_id
        team = accounts[agent_id].team if agent_id in accounts else ""
        return tuple(agent for agent, account in accounts.items() if team
                     and agent != agent_id and account.supervisor and account.team == team)

    def reason_of_code(self, code: int) -> str | None:
        return self.pause_reasons.get(code)
