"""``[site]``: what differs between sites on the Asterisk side, beyond ``[ami]`` and ``[ari]``.

The SIP transport (address, port, NAT addresses, optional TLS), the RTP range, the carrier
trunk, Asterisk's HTTP server (ARI and /metrics, optional HTTPS), where Asterisk keeps its
files, who may log in to AMI, and where the generated secrets are kept. ``callctl render-conf``
turns it, with the rest of the config, into Asterisk's configuration (``site/render.py``).

Paths of certificates and Asterisk's directories are paths as Asterisk sees them (inside its
container or chroot), so they are checked for shape, not for existence, here.
"""

from __future__ import annotations

from ipaddress import ip_address, ip_network
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, SecretStr, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from controller.section import Section

DEFAULT_SECRETS_FILE = "secrets.json"


def _ip(value: str) -> str:
    ip_address(value)
    return value


def _network(value: str) -> str:
    """A network in Asterisk's ``address/netmask`` form (``10.0.0.0/8`` becomes that too)."""
    return ip_network(value, strict=False).with_netmask


def _absolute(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError("must be an absolute path (as Asterisk sees it)")
    return value


IpAddress = Annotated[str, AfterValidator(_ip)]
Network = Annotated[str, AfterValidator(_network)]
AbsolutePath = Annotated[str, AfterValidator(_absolute)]
Port = Annotated[int, Field(ge=1, le=65535)]
# a host name or address as written in a SIP URI: no spaces, no URI syntax
Host = Annotated[str, Field(pattern=r"^[A-Za-z0-9.:_-]+$")]
# what PJSIP's identify matches: a host, an address or a network (10.0.0.0/8)
Match = Annotated[str, Field(pattern=r"^[A-Za-z0-9.:_/-]+$")]
Transport = Literal["udp", "tls"]


def key_errors(title: str, problems: list[tuple[tuple[str, ...], str]]) -> ValidationError:
    """A ``ValidationError`` located at the keys that are wrong, not at their section."""
    return ValidationError.from_exception_data(title, [
        InitErrorDetails(type=PydanticCustomError("site_setting", message), loc=loc, input=None)
        for loc, message in problems
    ])


class TlsFiles(Section):
    cert_file: AbsolutePath
    key_file: AbsolutePath


class SipTls(TlsFiles):
    port: Port = 5061
    ca_file: AbsolutePath | None = Field(
        default=None, description="CA list to verify peers (carrier, phones) with")


class SipConfig(Section):
    bind: IpAddress = "127.0.0.1"
    port: Port = 5060
    external_address: Host | None = Field(
        default=None, description="NAT: the public address put in SIP and SDP for outside peers")
    local_nets: tuple[Network, ...] = Field(
        default=(), description="NAT: networks reached without the external address")
    tls: SipTls | None = None
    agent_transport: Transport = "udp"

    @model_validator(mode="after")
    def _tls_when_used(self) -> Self:
        if self.agent_transport == "tls" and self.tls is None:
            raise key_errors("SipConfig", [
                (("agent_transport",), "'tls' needs a [site.sip.tls] section")])
        return self


class RtpConfig(Section):
    start: int = Field(default=10000, ge=1024, le=65535)
    end: int = Field(default=20000, ge=1024, le=65535)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end <= self.start:
            raise key_errors("RtpConfig", [
                (("end",), f"must be above site.rtp.start ({self.start})")])
        return self


class TrunkConfig(Section):
    """The carrier: calls out go to ``host:port``, calls in are recognised by their source
    address (``identify``, default the host) and land in ``from-trunk`` (DIDs only)."""

    host: Host
    port: Port = 5060
    transport: Transport = "udp"
    username: str | None = Field(default=None, min_length=1)
    password: SecretStr | None = Field(default=None, min_length=1)
    registration: bool = Field(default=False, description="register to the carrier (username)")
    identify: tuple[Match, ...] = Field(
        default=(), description="addresses or networks calls from the carrier come from")
    codecs: tuple[Annotated[str, Field(pattern=r"^[a-z0-9_]+$")], ...] = ("alaw", "ulaw")

    @model_validator(mode="after")
    def _credentials_complete(self) -> Self:
        problems: list[tuple[tuple[str, ...], str]] = []
        if self.username is not None and self.password is None:
            problems.append((("password",), "required when site.trunk.username is set"))
        if self.password is not None and self.username is None:
            problems.append((("username",), "required when site.trunk.password is set"))
        if self.registration and self.username is None:
            problems.append((("registration",), "registering needs site.trunk.username"))
        if problems:
            raise key_errors("TrunkConfig", problems)
        return self

    @property
    def identify_matches(self) -> tuple[str, ...]:
        return self.identify or (self.host,)


class HttpsConfig(TlsFiles):
    port: Port = 8089


class AsteriskHttpConfig(Section):
    """Asterisk's HTTP server: ARI and /metrics (plain), ARI also over HTTPS with ``tls``."""

    bind: IpAddress = "127.0.0.1"
    port: Port = 8088
    tls: HttpsConfig | None = None


class AsteriskPaths(Section):
    """Asterisk's directories (Debian's defaults) and the user it drops to after starting."""

    config_dir: AbsolutePath = "/etc/asterisk"
    run_dir: AbsolutePath = "/var/run/asterisk"
    spool_dir: AbsolutePath = "/var/spool/asterisk"
    db_dir: AbsolutePath = "/var/lib/asterisk"
    log_dir: AbsolutePath = "/var/log/asterisk"
    run_user: str | None = Field(default=None, min_length=1)
    run_group: str | None = Field(default=None, min_length=1)


# a node's SIP address as the proxy's dispatcher reaches it: IPv4 address and port
NodeAddress = Annotated[str, Field(pattern=r"^\d{1,3}(\.\d{1,3}){3}:\d{1,5}$")]


class ProxyConfig(Section):
    """The site's SIP proxy (Kamailio, ``kamailio/``) in front of several Asterisk nodes.

    Phones register at it and the carrier sends its calls to it; it authenticates agents,
    admits the carrier to the site's numbers only, and dispatches to ``nodes``. A node rendered
    with this section accepts SIP from ``address`` alone and reaches agents and the carrier
    through it."""

    address: IpAddress
    port: Port = 5060
    nodes: tuple[NodeAddress, ...] = Field(
        min_length=1, description="every Asterisk node's SIP address (ip:port), dispatched to")
    realm: str = Field(default="callctl", pattern=r"^[A-Za-z0-9.-]+$",
                       description="digest realm of the agents' credentials at the proxy")
    node_timeout_ms: int = Field(
        default=2000, ge=500, le=30000,
        description="no answer from a node in this time: the call goes to the next node")


class SiteConfig(Section):
    secrets_file: str = Field(
        default=DEFAULT_SECRETS_FILE,
        description="generated secrets (owner-only JSON), relative to the config file's folder",
    )
    asterisk: AsteriskPaths = AsteriskPaths()
    sip: SipConfig = SipConfig()
    rtp: RtpConfig = RtpConfig()
    http: AsteriskHttpConfig = AsteriskHttpConfig()
    ami_permit: tuple[Network, ...] = Field(
        default=("127.0.0.1/32",), description="networks AMI logins are accepted from")
    trunk: TrunkConfig | None = None
    proxy: ProxyConfig | None = None
