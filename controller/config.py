"""The controller's one validated TOML configuration.

Every section is a pydantic model with ``extra="forbid"`` so a typo is an error, not a silently
ignored key. ``load_config`` turns every problem into a ``ConfigError`` whose lines name the key
path (``ami.secret``, ``inbound.queues.sales.overflow[0].destination``) and what is wrong.
Domain sections (inbound, recording) live next to their domain and are only assembled here.
"""

from __future__ import annotations

import os
import socket
import tomllib
from functools import cached_property
from ipaddress import ip_address
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from controller.agents.config import AgentAccount, AgentsConfig
from controller.inbound.config import CONFIG_DIR_CONTEXT_KEY, InboundConfig
from controller.metrics.config import MetricsConfig
from controller.recording.config import RecordingConfig
from controller.section import Section
from controller.site.config import SiteConfig
from controller.site.secrets import (
    SecretsError,
    SiteSecrets,
    fill_config,
    missing_keys,
    read_secrets,
    secrets_path,
)
from controller.store.url import parse_store_url

DEFAULT_CONFIG_PATH = "controller.toml"
CONFIG_ENV = "CALLCTL_CONFIG"
AGENT_TABLES = ("accounts", "csv_accounts")


NonEmptySecret = Annotated[SecretStr, Field(min_length=1)]
Seconds = Annotated[float, Field(gt=0)]


class HttpConfig(Section):
    listen: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    api_token: NonEmptySecret

    @field_validator("listen")
    @classmethod
    def _is_ip(cls, value: str) -> str:
        ip_address(value)
        return value


class AmiConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=5038, ge=1, le=65535)
    username: str = Field(min_length=1)
    secret: NonEmptySecret
    action_timeout: Seconds = 5.0
    ping_interval: Seconds = 2.0
    reconnect_max_delay: Seconds = 2.0


class AriConfig(Section):
    url: str = "http://127.0.0.1:8088"
    username: str = Field(min_length=1)
    password: NonEmptySecret
    app: str = Field(default="callctl", pattern=r"^[A-Za-z0-9_-]+$")
    request_timeout: Seconds = 5.0
    reconnect_max_delay: Seconds = 2.0


class StoreConfig(Section):
    url: str = Field(
        default="sqlite:///var/callctl.db",
        description="sqlite:///relative/path, sqlite:////absolute/path, or"
        " postgresql://user:password@host:port/dbname[?pool_max=N&prepared_statements=off]",
    )

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        parse_store_url(value)  # its ValueError names what is wrong
        return value


class DialerConfig(Section):
    worker_id: str = Field(
        default_factory=socket.gethostname,
        min_length=1,
        description="names this controller's claims on leads; unique per dialing host",
    )
    agents: tuple[str, ...] = Field(
        default=(),
        description=(
            "the agents this worker seats in its campaigns (of each campaign's own); empty:"
            " all of them. With several workers on one store, give each its own agents: a"
            " worker cannot see another's legs, so two seating one agent offer it two calls"
        ),
    )


class NodeConfig(Section):
    """This controller's Asterisk node, as the store knows it (its inbound calls, its lease)."""

    name: str | None = Field(
        default=None,
        min_length=1,
        description="names this node in the store; unique per node; default dialer.worker_id",
    )
    lost_after: Seconds = Field(
        default=5.0,
        description="an AMI connection down this long loses the node: its open calls end"
        " node_lost",
    )
    lease: Seconds = Field(
        default=10.0,
        description="how long this controller's claim on its node's calls outlives its last"
        " renewal (every lease / 5 s); after that a controller of another node settles them",
    )


class LoggingConfig(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"


class Config(Section):
    http: HttpConfig
    ami: AmiConfig
    ari: AriConfig
    store: StoreConfig = StoreConfig()
    logging: LoggingConfig = LoggingConfig()
    dialer: DialerConfig = DialerConfig()
    node: NodeConfig = NodeConfig()
    inbound: InboundConfig = InboundConfig()
    recording: RecordingConfig = RecordingConfig()
    metrics: MetricsConfig = MetricsConfig()
    site: SiteConfig = SiteConfig()
    agents: AgentsConfig = AgentsConfig()

    @model_validator(mode="after")
    def _agents_resolve(self) -> Config:
        problems = agent_problems(self)
        if problems:
            raise ValidationError.from_exception_data("Config", [
                InitErrorDetails(type=PydanticCustomError("agents_reference", message),
                                 loc=loc, input=None)
                for loc, message in problems])
        return self

    @property
    def node_name(self) -> str:
        """The name of this controller's node in the store."""
        return self.node.name or self.dialer.worker_id

    @cached_property
    def agent_accounts(self) -> dict[str, AgentAccount]:
        """Every agent by id: the ``[agents]`` accounts, each with the inbound queues that list
        it as a member too; a member ``[agents]`` does not declare is an account of its own
        (no name, no team), so configs written before ``[agents]`` keep working."""
        accounts = dict(self.agents.by_id)
        for name, queue in self.inbound.queues.items():
            for member in queue.members:
                account = accounts.get(member.agent, AgentAccount())
                queues = {**account.queues, name: member.penalty}
                accounts[member.agent] = account.model_copy(update={"queues": queues})
        return dict(sorted(accounts.items(), key=lambda item: int(item[0])
                           if item[0].isdigit() else 0))

    def queues_of_agent(self, agent_id: str) -> tuple[tuple[str, int], ...]:
        """``(queue, penalty)`` of every queue the agent logs in to."""
        account = self.agent_accounts.get(agent_id)
        return tuple(account.queues.items()) if account else ()


def agent_problems(config: Config) -> list[tuple[tuple[str | int, ...], str]]:
    """Agents and queues must name each other consistently; an agent id is not a DID."""
    accounts, queues = config.agents.by_id, config.inbound.queues
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for agent, account in accounts.items():
        problems += [(("agents", agent, "queues", queue), f"queue '{queue}' is not defined")
                     for queue in account.queues if queue not in queues]
        if agent in config.inbound.numbers:
            problems.append((("agents", agent), f"{agent} is also a number in inbound.numbers"))
    problems += [(("agents", "auto_pause", queue), f"queue '{queue}' is not defined")
                 for queue in config.agents.auto_pause if queue not in queues]
    for name, queue in queues.items():
        for index, member in enumerate(queue.members):
            loc: tuple[str | int, ...] = ("inbound", "queues", name, "members", index)
            if member.agent in accounts and (
                    accounts[member.agent].queues.get(name, member.penalty) != member.penalty):
                problems.append((loc, f"penalty {member.penalty} differs from "
                                      f"agents.{member.agent}.queues.{name}"))
    return problems


class ConfigError(Exception):
    """A configuration that cannot be used; ``problems`` are ``(key path, message)`` pairs."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"{self.source}: invalid configuration"]
        lines += [f"  {path or '(top level)'}: {message}" for path, message in self.problems]
        return "\n".join(lines)


def format_location(loc: tuple[int | str, ...]) -> str:
    """Render a pydantic location tuple as a key path: ``inbound.queues.sales.overflow[0]``."""
    out = ""
    for index, part in enumerate(loc):
        if loc[index - 1 : index] == ("agents",) and part in AGENT_TABLES:
            continue  # [agents.1001] is agents.accounts.1001 inside
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def validation_problems(error: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for item in error.errors():
        # pydantic puts validator names (function-after[...]) into loc for wrapped validators
        loc = tuple(p for p in item["loc"] if not (isinstance(p, str) and "[" in p and "]" in p))
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif item["type"] == "missing":
            message = "required key is missing"
        problems.append((format_location(loc), message))
    return problems


def config_path(explicit: str | None = None) -> Path:
    return Path(explicit or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH)


def parse_config(
    data: dict[str, Any], source: str = "<config>", config_dir: Path | None = None
) -> Config:
    """Validate ``data``; files the config names (holiday calendars) resolve from ``config_dir``."""
    context = {CONFIG_DIR_CONTEXT_KEY: config_dir} if config_dir is not None else None
    try:
        return Config.model_validate(data, context=context)
    except ValidationError as error:
        raise ConfigError(source, validation_problems(error)) from None


def read_config_file(file: Path) -> dict[str, Any]:
    """The TOML of ``file`` as data, unvalidated; unreadable files raise ``ConfigError``."""
    try:
        raw = file.read_bytes()
    except OSError as error:
        raise ConfigError(str(file), [("", f"cannot read file: {error.strerror}")]) from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(str(file), [("", "file is not UTF-8 text")]) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(str(file), [("", f"not valid TOML: {error}")]) from None


def with_stored_secrets(
    data: dict[str, Any], file: Path, stored: SiteSecrets | None = None
) -> dict[str, Any]:
    """``data`` with the secret keys it leaves out filled from the site's secrets store
    (``stored``, or the file ``site.secrets_file`` names, when it exists)."""
    if not missing_keys(data):
        return data
    if stored is None:
        try:
            stored = read_secrets(secrets_path(data, file.parent))
        except SecretsError as error:
            raise ConfigError(str(file), [("site.secrets_file", str(error))]) from None
    return data if stored is None else fill_config(data, stored)


def load_config(path: str | Path | None = None) -> Config:
    file = config_path(str(path) if path else None)
    data = with_stored_secrets(read_config_file(file), file)
    try:
        return parse_config(data, str(file), config_dir=file.parent)
    except ConfigError as error:
        missing = missing_keys(data)
        if not missing:
            raise
        hint = (f"no secrets store {secrets_path(data, file.parent)} to take "
                f"{', '.join(missing)} from: `callctl render-conf` generates it")
        raise ConfigError(error.source, [*error.problems, ("site.secrets_file", hint)]) from None
