"""A site as a site installs it: `callctl render-conf` into an empty folder, Asterisk 22 booted
from that folder alone, the controller on the same config; and the Asterisk image's entrypoint
run against the testbed's Debian sid root (the distribution the image uses).

These instances use the ports of the suite's second instance (``demo_test_ports``, which
test_demo uses): tests run one at a time, so they are free, and the session's own instance may
keep running beside them.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import socket
import ssl
import subprocess
import sys
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w

from controller.config import load_config
from testbed.asterisk import REPO_DIR, AsteriskInstance, demo_test_ports, ensure_root
from testbed.asterisk import test_slot as session_slot
from testbed.sipp import SippPool

from .conftest import free_loopback_port
from .harness import Api, ControllerProcess, running_controller, wait_for
from .test_testbed import ami_login

ENTRYPOINT = REPO_DIR / "docker" / "asterisk-entrypoint.sh"
PLACEHOLDER = re.compile(r"@[A-Z][A-Z0-9_]*@")

# A site's config as an operator writes it (documentation addresses, a carrier with
# credentials). The test swaps what is not loopback for loopback, and the ports and folders
# for its instance's; everything else is rendered as it stands.
SITE = """
[http]
listen = "127.0.0.1"
port = {api_port}

[ami]
host = "192.0.2.10"
port = 5038

[ari]
url = "http://192.0.2.10:8088"

[store]
url = "sqlite:///{store}"

[site]
secrets_file = "{secrets}"
ami_permit = ["192.0.2.0/24"]

[site.asterisk]
config_dir = "/etc/asterisk"
run_dir = "/var/run/asterisk"
spool_dir = "/var/spool/asterisk"
db_dir = "/var/lib/asterisk"
log_dir = "/var/log/asterisk"

[site.sip]
bind = "192.0.2.10"
port = 5060
external_address = "203.0.113.7"
local_nets = ["192.0.2.0/24"]

[site.rtp]
start = 10000
end = 20000

[site.http]
bind = "192.0.2.10"
port = 8088

[site.trunk]
host = "sip.carrier.example"
port = 5060
username = "acme-pbx"
password = "carrier-secret"
identify = ["198.51.100.0/24"]

[inbound.queues.support]
members = ["1001", "1002"]
fallback_timeout = 60

[inbound.numbers.5000]
queue = "support"
"""


class PrerenderedInstance(AsteriskInstance):
    """An instance booted from files rendered outside it (by the command under test)."""

    def render_config(self) -> None:
        """Nothing to render: ``prepare_directories`` ran before the files were written."""


def loopback_site(instance: AsteriskInstance, tmp_path: Path, api_port: int) -> str:
    """``SITE`` with the instance's loopback addresses, ports and folders."""
    ports = instance.ports
    text = SITE.format(api_port=api_port, store=tmp_path / "callctl.db",
                       secrets=instance.secrets_file)
    swaps = {
        "192.0.2.10:8088": f"127.0.0.1:{ports.http}", "192.0.2.0/24": "127.0.0.0/8",
        "192.0.2.10": "127.0.0.1", "sip.carrier.example": "127.0.0.2",
        "198.51.100.0/24": "127.0.0.2",
        "port = 5038": f"port = {ports.ami}", "port = 8088": f"port = {ports.http}",
        "start = 10000": f"start = {ports.rtp_start}", "end = 20000": f"end = {ports.rtp_end}",
        'host = "127.0.0.2"\nport = 5060': f'host = "127.0.0.2"\nport = {ports.trunk}',
        "bind = \"127.0.0.1\"\nport = 5060": f"bind = \"127.0.0.1\"\nport = {ports.sip}",
        '"/etc/asterisk"': f'"{instance.etc_dir}"',
        '"/var/run/asterisk"': f'"{instance.run_dir}"',
        '"/var/spool/asterisk"': f'"{instance.spool_dir}"',
        '"/var/lib/asterisk"': f'"{instance.db_dir}"',
        '"/var/log/asterisk"': f'"{instance.log_dir}"',
    }
    for real, loopback in swaps.items():
        text = text.replace(real, loopback)
    assert not re.search(r"192\.0\.2|198\.51|carrier\.example|= 5060\n|/etc/asterisk", text)
    return text


def callctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "controller.cli.main", *args],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def site_instance(tmp_path: Path) -> Iterator[PrerenderedInstance]:
    ensure_root()
    slot = session_slot()
    instance = PrerenderedInstance(f"site{slot or ''}", tmp_path / "state",
                                   demo_test_ports(slot), fresh=True)
    instance.prepare_directories()  # the config folder is empty from here on
    try:
        yield instance
    finally:
        instance.stop()


def rendered_files(instance: AsteriskInstance) -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted(instance.config_dir.iterdir())}


async def test_a_rendered_site_boots_and_serves_calls_from_its_folder_alone(
    site_instance: PrerenderedInstance, tmp_path: Path,
) -> None:
    instance = site_instance
    config_file = tmp_path / "controller.toml"
    site = loopback_site(instance, tmp_path, free_loopback_port())

    config_file.write_text(site.replace('password = "carrier-secret"\n', ""))
    refused = callctl("--config", str(config_file), "render-conf", "--out",
                      str(instance.config_dir))
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "  site.trunk.password: required when site.trunk.username is set" in refused.stderr
    assert list(instance.config_dir.iterdir()) == []
    assert not instance.secrets_file.exists()

    config_file.write_text(site)
    rendered = callctl("--config", str(config_file), "render-conf", "--out",
                       str(instance.config_dir))
    assert rendered.returncode == 0, rendered.stdout + rendered.stderr
    files = rendered_files(instance)
    assert len(files) == 21 and "pjsip.conf" in files and "callbacks.conf" in files
    assert {name: m.group(0) for name, text in files.items()
            if (m := PLACEHOLDER.search(text))} == {}
    secrets = instance.secrets
    assert not any(value in rendered.stdout for value in secrets.values())
    assert "carrier-secret" in files["pjsip.conf"]

    instance.start()
    assert "Response: Success" in ami_login(instance, secrets.ami_secret)
    assert "Response: Error" in ami_login(instance, "wrong-secret")
    assert instance.ari_request("asterisk/info")[0] == 200
    assert "CALLCTL_ARI_APP=callctl" in instance.cli("dialplan show globals")
    assert "203.0.113.7" in instance.cli("pjsip show transport transport-udp")

    config = load_config(config_file)
    pool = SippPool(tmp_path / "sipp", instance.ports.sip, None, instance.ports.trunk)
    try:
        async with running_controller(config):
            assert await Api(config).healthy()
            await wait_for(lambda: "callctl" in instance.cli("ari show apps"), 10,
                           "the controller's Stasis app")
            carrier = pool.call("5000", HOLD_MS="1500")
            agent = pool.agent_call("1001", secrets.agent_passwords["1001"], "5000",
                                    HOLD_MS="1500")
            # off the loop: the controller on it routes both calls meanwhile
            assert (await asyncio.to_thread(carrier.wait, 30)).successful == 1, carrier.output()
            assert (await asyncio.to_thread(agent.wait, 30)).successful == 1, agent.output()
    finally:
        pool.close()
    queue_log = (instance.host_path(instance.log_dir) / "queue_log").read_text()
    # both reached the queue: the carrier's customer and agent 1001's phone (its caller id)
    entered = re.findall(r"\|support\|NONE\|ENTERQUEUE\|\|(\w+)\|", queue_log)
    assert sorted(entered) == ["0441234567", "1001"], queue_log[-2000:]

    again = callctl("--config", str(config_file), "render-conf", "--out",
                    str(instance.config_dir), "--diff")
    assert (again.returncode, again.stdout) == (0, ""), again.stderr


def test_the_image_entrypoint_renders_and_asterisk_starts_from_it(
    site_instance: PrerenderedInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    instance = site_instance
    config_file = tmp_path / "controller.toml"
    config_file.write_text(loopback_site(instance, tmp_path, free_loopback_port()))
    monkeypatch.setenv("CALLCTL_CONFIG", str(config_file))
    monkeypatch.setenv("ASTERISK_CONFIG_DIR", str(instance.config_dir))
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")

    instance.start(entrypoint=[str(ENTRYPOINT)])

    # the store and every file come from the entrypoint's render
    assert len(rendered_files(instance)) == 21
    assert "Response: Success" in ami_login(instance, instance.secrets.ami_secret)
    assert "1001" in instance.cli("pjsip show endpoints")
    log = instance.console_log.read_text()
    assert "21 files written" in log, log[-2000:]
    # exec: the entrypoint's process became Asterisk (the one the instance watches)
    process = instance._process
    assert process is not None and instance.pid() == process.pid


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made with openssl."""
    cert, key = folder / "callctl.crt", folder / "callctl.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def test_tls_for_sip_and_https_for_ari_serve_the_controller(
    site_instance: PrerenderedInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    instance = site_instance
    keys = instance.host_path(instance.db_dir / "keys")  # paths as Asterisk sees them below
    keys.mkdir()
    cert, key = self_signed_certificate(keys)
    inside = {"cert_file": str(instance.db_dir / "keys" / cert.name),
              "key_file": str(instance.db_dir / "keys" / key.name)}
    # one above the instance's SIP and HTTP ports: no slot's instance or sipp uses those
    sip_tls, https = instance.ports.sip + 1, instance.ports.http + 1
    data = tomllib.loads(loopback_site(instance, tmp_path, free_loopback_port()))
    data["site"]["sip"] |= {"tls": {"port": sip_tls, **inside}, "agent_transport": "tls"}
    data["site"]["http"]["tls"] = {"port": https, **inside}
    data["ari"]["url"] = f"https://127.0.0.1:{https}"
    config_file = tmp_path / "controller.toml"
    config_file.write_text(tomli_w.dumps(data))
    rendered = callctl("--config", str(config_file), "render-conf", "--out",
                       str(instance.config_dir))
    assert rendered.returncode == 0, rendered.stdout + rendered.stderr

    instance.start()  # readiness asks ARI over plain HTTP, still served for /metrics
    assert "transport-tls" in instance.cli("pjsip show endpoint 1001")
    trusting = ssl.create_default_context(cafile=str(cert))
    with (socket.create_connection(("127.0.0.1", sip_tls), timeout=5) as raw,
          trusting.wrap_socket(raw, server_hostname="127.0.0.1") as tls):
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
    secrets = instance.secrets
    login = base64.b64encode(f"{secrets.ari_user}:{secrets.ari_password}".encode()).decode()
    request = urllib.request.Request(f"https://127.0.0.1:{https}/ari/asterisk/info",
                                     headers={"Authorization": f"Basic {login}"})
    with urllib.request.urlopen(request, timeout=5, context=trusting) as response:
        assert response.status == 200

    # the controller speaks ARI (REST and events) over HTTPS when it trusts the certificate
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    controller = ControllerProcess(config_file, tmp_path / "controller.log")
    controller.start()
    try:
        api = Api(load_config(config_file))
        asyncio.run(wait_for(api.healthy, 20, "the controller healthy over HTTPS ARI"))
        assert "callctl" in instance.cli("ari show apps")
    finally:
        controller.stop()


def test_the_entrypoint_refuses_a_missing_config(tmp_path: Path) -> None:
    result = subprocess.run([str(ENTRYPOINT), "true"], capture_output=True, text=True,
                            timeout=30, check=False,
                            env={**os.environ, "CALLCTL_CONFIG": str(tmp_path / "none.toml")})
    assert result.returncode == 2
    assert "no controller config at" in result.stderr
