"""``[site.proxy]``: a node's pjsip.conf behind Kamailio and Kamailio's own files, rendered from
the example config (the real Kamailio and nodes: tests/integration/test_cluster.py)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import tomli_w

from controller.cli.main import main
from controller.config import ConfigError
from controller.site.deploy import load_site, render_files, render_kamailio_to
from controller.site.proxy import SITE_CFG, SUBSCRIBER_TABLE

REPO = Path(__file__).resolve().parents[2]
PROXY = {"address": "127.0.0.1", "port": 5060, "nodes": ["127.0.1.1:5060", "127.0.1.2:5060"]}


def config_with_proxy(tmp_path: Path, **trunk: object) -> Path:
    data = tomllib.loads((REPO / "controller.example.toml").read_text())
    data["site"]["proxy"] = PROXY
    data["site"]["trunk"] |= trunk
    path = tmp_path / "controller.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def section(text: str, name: str) -> list[str]:
    """The option lines of the first section ``[name]`` (any templates)."""
    found = re.search(rf"^\[{re.escape(name)}\][^\n]*\n(.*?)(?=^\[|\Z)", text, re.M | re.S)
    assert found, name
    return [line for line in found.group(1).splitlines() if "=" in line]


def test_a_node_behind_the_proxy_takes_sip_from_it_alone(tmp_path: Path) -> None:
    pjsip = render_files(load_site(config_with_proxy(tmp_path)))["pjsip.conf"]

    assert section(pjsip, "proxy-only") == [
        "type = acl", "deny = 0.0.0.0/0.0.0.0", "permit = 127.0.0.1/255.255.255.255"]
    assert "endpoint_identifier_order = header" in section(pjsip, "global")
    # an agent: no challenge here (the proxy asked), found by the proxy's header, reached
    # through the proxy
    assert re.search(r"^\[1001\]\(agent-endpoint,agent-behind-proxy\)$", pjsip, re.M)
    assert not [line for line in section(pjsip, "1001") if line.startswith("auth =")]
    assert section(pjsip, "1001-via-proxy") == [
        "type = identify", "endpoint = 1001", "match_header = X-Callctl-Agent: 1001"]
    assert "contact = sip:1001@127.0.0.1:5060" in pjsip
    # the carrier: by the proxy's header, not by address; calls out go through the proxy
    trunk = section(pjsip, "trunk")
    assert "identify_by = header" in trunk and "outbound_proxy = sip:127.0.0.1:5060\\;lr" in trunk
    assert "match_header = X-Callctl-Trunk: carrier" in pjsip
    assert not re.search(r"^match = ", pjsip, re.M)
    assert pjsip.index("[agent-behind-proxy](!)") < pjsip.index("[1001](agent-endpoint")


def test_without_a_proxy_the_node_is_rendered_as_before(tmp_path: Path) -> None:
    data = tomllib.loads((REPO / "controller.example.toml").read_text())
    path = tmp_path / "controller.toml"
    path.write_text(tomli_w.dumps(data))

    pjsip = render_files(load_site(path))["pjsip.conf"]

    assert "proxy" not in pjsip and "match = 127.0.0.2" in pjsip


def test_kamailio_gets_nodes_numbers_carrier_and_the_agents_passwords(tmp_path: Path) -> None:
    config_file = config_with_proxy(tmp_path)
    out = tmp_path / "kamailio"

    rendered = render_kamailio_to(config_file, out)

    passwords = load_site(config_file).secrets.agent_passwords
    assert (out / "dispatcher.list").read_text().splitlines()[1:] == [
        "1 sip:127.0.1.1:5060 0 0", "1 sip:127.0.1.2:5060 0 0"]
    assert "listen=udp:127.0.0.1:5060" in (out / SITE_CFG).read_text()
    routes = (out / "callctl-routes.cfg").read_text()
    assert 'is_in_subnet("$si", "127.0.0.2/32")' in routes
    assert '$rU == "5000" || $rU == "5001"' in routes
    rows = (out / SUBSCRIBER_TABLE).read_text().splitlines()[1:]
    assert rows == [f"{number}:{agent}::{password}::"
                    for number, (agent, password) in enumerate(sorted(passwords.items()), 1)]
    assert (out / "kamailio.cfg").read_text() == (REPO / "kamailio" / "kamailio.cfg").read_text()
    assert rendered.written and render_kamailio_to(config_file, out).written == []


def test_render_conf_writes_the_proxy_beside_the_nodes_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = config_with_proxy(tmp_path)
    out, proxy = tmp_path / "asterisk", tmp_path / "kamailio"

    status = main(["--config", str(config_file), "render-conf", "--out", str(out),
                   "--kamailio", str(proxy)])

    assert status == 0
    assert "[proxy-only]" in (out / "pjsip.conf").read_text()
    assert (proxy / "kamailio.cfg").exists() and (proxy / "dispatcher.list").exists()
    assert f"{proxy}: 6 files written, 0 unchanged" in capsys.readouterr().out


def test_a_carrier_known_by_name_cannot_be_checked_at_the_proxy(tmp_path: Path) -> None:
    config_file = config_with_proxy(tmp_path, host="sip.carrier.example")

    with pytest.raises(ConfigError) as error:
        render_kamailio_to(config_file, tmp_path / "kamailio")

    assert "site.trunk.identify" in str(error.value)
