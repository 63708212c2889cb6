"""``callctl render-conf``: the Asterisk side from the example site config, its secrets store,
key-path errors, idempotence (no Asterisk here: tests/integration/test_site.py boots one)."""

from __future__ import annotations

import re
import stat
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w
import yaml

from controller.cli.main import main
from controller.config import load_config
from controller.site import deploy
from controller.site.deploy import (
    MASK,
    DeployError,
    load_site,
    reload_commands,
    render_files,
    render_to,
)
from controller.site.render import PLACEHOLDER, agent_sections
from controller.site.secrets import read_secrets

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "controller.example.toml"


def site_file(tmp_path: Path, **sections: Any) -> Path:
    """The example config in ``tmp_path``, each ``site_<key>`` merged into ``[site.<key>]``
    (None deletes it) and other keywords into their top-level section."""
    data = tomllib.loads(EXAMPLE.read_text())
    for name, value in sections.items():
        table, key = (data["site"], name[5:]) if name.startswith("site_") else (data, name)
        if value is None:
            table.pop(key, None)
        else:
            table[key] = {**table.get(key, {}), **value}
    path = tmp_path / "controller.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def sections(text: str) -> list[str]:
    return re.findall(r"^\[([^\]]+)\]", text, flags=re.MULTILINE)


def test_the_example_renders_every_file_without_a_placeholder(tmp_path: Path) -> None:
    files = render_files(load_site(site_file(tmp_path)))
    static = {p.name for d in ("asterisk-conf", "dialplans") for p in (REPO / d).glob("*.conf")}
    assert static < files.keys()
    assert {"pjsip.conf", "manager.conf", "ari.conf", "http.conf", "rtp.conf", "asterisk.conf",
            "callctl-globals.conf", "callctl-queues.conf", "callctl-inbound.conf"} < files.keys()
    assert [name for name, text in files.items() if PLACEHOLDER.search(text)] == []
    assert "CALLCTL_ARI_APP = callctl" in files["callctl-globals.conf"]
    assert "bind = 127.0.0.1:5060" in files["pjsip.conf"]
    assert "contact = sip:127.0.0.2:5070" in files["pjsip.conf"]
    assert "rtpstart = 10000" in files["rtp.conf"]
    # the node's name prefixes its uniqueids: two nodes on one store never share a call id
    assert "systemname = demo" in files["asterisk.conf"]
    named = render_files(load_site(site_file(tmp_path, node={"name": "pbx-2"})))
    assert "systemname = pbx-2" in named["asterisk.conf"]


def test_both_sides_take_their_secrets_from_one_store(tmp_path: Path) -> None:
    config_file = site_file(tmp_path)
    out = tmp_path / "asterisk"
    render_to(config_file, out)
    stored = read_secrets(tmp_path / "secrets.json")
    assert stored is not None
    controller = load_config(config_file)
    assert controller.ami.secret.get_secret_value() == stored.ami_secret
    assert controller.ari.password.get_secret_value() == stored.ari_password
    assert controller.http.api_token.get_secret_value() == stored.api_token
    manager = (out / "manager.conf").read_text()
    assert f"[{stored.ami_user}]" in manager and f"secret = {stored.ami_secret}" in manager
    assert f"password = {stored.ari_password}" in (out / "ari.conf").read_text()
    # every queue member of the example is an agent with its own generated password
    assert sorted(stored.agent_passwords) == ["1001", "1002", "1003", "1004", "1005"]
    pjsip = (out / "pjsip.conf").read_text()
    for agent, password in stored.agent_passwords.items():
        assert f"[{agent}-auth](agent-auth)\nusername = {agent}\npassword = {password}\n" in pjsip
    assert len(set(stored.agent_passwords.values())) == 5


def test_a_secret_written_in_the_config_wins_on_both_sides(tmp_path: Path) -> None:
    config_file = site_file(tmp_path, ami={"secret": "chosen-by-the-site"})
    render_to(config_file, tmp_path / "asterisk")
    assert "secret = chosen-by-the-site" in (tmp_path / "asterisk/manager.conf").read_text()
    assert load_config(config_file).ami.secret.get_secret_value() == "chosen-by-the-site"


def test_rendering_twice_changes_nothing_and_the_second_diff_is_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = site_file(tmp_path)
    out = tmp_path / "asterisk"
    assert main(["--config", str(config_file), "render-conf", "--out", str(out), "--diff"]) == 0
    first_diff = capsys.readouterr().out
    assert "secrets store" in first_diff and "would be created" in first_diff
    assert not out.exists() and not (tmp_path / "secrets.json").exists()  # --diff writes nothing

    assert main(["--config", str(config_file), "render-conf", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "asterisk -rx 'core restart gracefully'" in printed  # asterisk.conf is new
    before = {p.name: (p.read_text(), p.stat().st_mtime_ns) for p in out.iterdir()}
    assert main(["--config", str(config_file), "render-conf", "--out", str(out), "--diff"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["--config", str(config_file), "render-conf", "--out", str(out)]) == 0
    assert "0 files written" in capsys.readouterr().out
    assert {p.name: (p.read_text(), p.stat().st_mtime_ns) for p in out.iterdir()} == before


def test_secrets_are_owner_only_never_printed_and_differ_between_sites(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stores = []
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        config_file = site_file(tmp_path / name)
        out = tmp_path / name / "asterisk"
        assert main(["--config", str(config_file), "render-conf", "--out", str(out)]) == 0
        printed = capsys.readouterr().out
        store = tmp_path / name / "secrets.json"
        assert stat.S_IMODE(store.stat().st_mode) == 0o600
        assert {stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()} == {0o600}
        stored = read_secrets(store)
        assert stored is not None
        assert not any(value in printed for value in stored.values())
        stores.append(stored)
    one, two = stores
    assert not set(one.values()) & set(two.values())

    assert main(["--config", str(config_file), "render-conf", "--out", str(out),
                 "--show-secrets"]) == 0
    assert f"agent 1001 password {two.agent_passwords['1001']}" in capsys.readouterr().out


def test_diff_masks_secrets_unless_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = site_file(tmp_path)
    out = tmp_path / "asterisk"
    render_to(config_file, out)
    (out / "manager.conf").write_text("; edited by hand\n")
    stored = read_secrets(tmp_path / "secrets.json")
    assert stored is not None
    assert main(["--config", str(config_file), "render-conf", "--out", str(out), "--diff"]) == 0
    masked = capsys.readouterr().out
    assert f"+secret = {MASK}" in masked and "-; edited by hand" in masked
    assert stored.ami_secret not in masked
    assert main(["--config", str(config_file), "render-conf", "--out", str(out), "--diff",
                 "--show-secrets"]) == 0
    assert f"+secret = {stored.ami_secret}" in capsys.readouterr().out


@pytest.mark.parametrize(("sections_", "key"), [
    ({"site_trunk": {"username": "acme"}}, "site.trunk.password"),
    ({"site_trunk": {"password": "x"}}, "site.trunk.username"),
    ({"site_trunk": {"registration": True}}, "site.trunk.registration"),
    ({"site_trunk": None}, "site.trunk"),
    ({"site_rtp": {"start": 20000, "end": 10000}}, "site.rtp.end"),
    ({"site_sip": {"agent_transport": "tls"}}, "site.sip.agent_transport"),
    ({"site_sip": {"bind": "not-an-address"}}, "site.sip.bind"),
    ({"site_sip": {"local_nets": ["10.0.0.0/33"]}}, "site.sip.local_nets[0]"),
    ({"site_asterisk": {"config_dir": "etc/asterisk"}}, "site.asterisk.config_dir"),
    ({"site_http": {"port": 8090}}, "ari.url"),
    ({"ari": {"url": "https://127.0.0.1:8089"}}, "ari.url"),
    ({"ami": {"host": "pbx.example.com"}}, "ami.host"),
    ({"site_trunk": {"transport": "tls"}}, "site.trunk.transport"),
    ({"node": {"name": "pbx two"}}, "node.name"),
    ({"dialer": {"worker_id": "pbx/2"}}, "dialer.worker_id"),
])
def test_a_bad_or_missing_setting_is_refused_with_its_key_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sections_: dict[str, Any], key: str
) -> None:
    config_file = site_file(tmp_path, **sections_)
    out = tmp_path / "asterisk"
    assert main(["--config", str(config_file), "render-conf", "--out", str(out)]) == 2
    assert f"  {key}: " in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "secrets.json").exists()


def test_tls_nat_and_a_registering_trunk_render_into_pjsip_and_http(tmp_path: Path) -> None:
    config_file = site_file(
        tmp_path,
        site_sip={"bind": "0.0.0.0", "external_address": "203.0.113.7",
                  "local_nets": ["10.0.0.0/8"], "agent_transport": "tls",
                  "tls": {"cert_file": "/etc/asterisk/keys/sip.crt",
                          "key_file": "/etc/asterisk/keys/sip.key"}},
        site_http={"tls": {"cert_file": "/etc/asterisk/keys/ari.crt",
                           "key_file": "/etc/asterisk/keys/ari.key"}},
        site_trunk={"host": "sip.carrier.example", "port": 5060, "username": "acme",
                    "password": "carrier-pw", "registration": True,
                    "identify": ["198.51.100.0/24"]},
        ari={"url": "https://127.0.0.1:8089"},
    )
    files = render_files(load_site(config_file))
    pjsip = files["pjsip.conf"]
    assert ["transport-udp", "transport-tls", "trunk-auth", "trunk-registration"] == [
        s for s in sections(pjsip) if s.startswith(("transport", "trunk-"))]
    assert "bind = 0.0.0.0:5061\ncert_file = /etc/asterisk/keys/sip.crt" in pjsip
    assert pjsip.count("external_media_address = 203.0.113.7") == 2
    assert pjsip.count("local_net = 10.0.0.0/255.0.0.0") == 2
    assert "[1001](agent-endpoint)\ntransport = transport-tls\n" in pjsip
    assert "outbound_auth = trunk-auth" in pjsip and "password = carrier-pw" in pjsip
    assert "client_uri = sip:acme@sip.carrier.example:5060" in pjsip
    assert "match = 198.51.100.0/24" in pjsip
    http = files["http.conf"]
    assert "tlsenable = yes\ntlsbindaddr = 127.0.0.1:8089" in http
    assert "tlscertfile = /etc/asterisk/keys/ari.crt" in http


def test_an_agent_is_one_endpoint_auth_and_aor_named_by_its_id() -> None:
    text = "\n".join(agent_sections("2001", "pw", static_contact="sip:127.0.0.3:5080"))
    assert sections(text) == ["2001", "2001-auth", "2001"]
    assert "aors = 2001" in text and "contact = sip:127.0.0.3:5080" in text
    assert "contact" not in "\n".join(agent_sections("2001", "pw"))


def test_a_new_agent_gets_a_password_and_the_others_keep_theirs(tmp_path: Path) -> None:
    config_file = site_file(tmp_path)
    render_to(config_file, tmp_path / "asterisk")
    before = read_secrets(tmp_path / "secrets.json")
    data = tomllib.loads(config_file.read_text())
    data["agents"]["1006"] = {"queues": {"sales": 0}}
    config_file.write_text(tomli_w.dumps(data))
    result = render_to(config_file, tmp_path / "asterisk")
    after = read_secrets(tmp_path / "secrets.json")
    assert before is not None and after is not None
    assert result.secrets_written and result.written == ["callctl-agents.conf", "pjsip.conf"]
    assert result.commands == ["asterisk -rx 'dialplan reload'",
                               "asterisk -rx 'module reload res_pjsip.so'"]
    assert after.agent_passwords == {**before.agent_passwords,
                                     "1006": after.agent_passwords["1006"]}
    assert after.ami_secret == before.ami_secret


def test_an_unreadable_store_is_reported_and_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = site_file(tmp_path)
    (tmp_path / "secrets.json").write_text("{not json")
    assert main(["--config", str(config_file), "render-conf", "--out",
                 str(tmp_path / "asterisk")]) == 2
    assert "site.secrets_file: " in capsys.readouterr().err
    assert (tmp_path / "secrets.json").read_text() == "{not json"


def _read_only(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """``folder`` not writable, even for root (the suite may run as root)."""
    access = deploy.os.access
    monkeypatch.setattr(deploy.os, "access", lambda path, mode: (
        False if Path(path) == folder and mode & deploy.os.W_OK else access(path, mode)))


@pytest.mark.parametrize("case", ["a file", "under a file", "not writable", "parent read-only"])
@pytest.mark.parametrize("option", ["--out", "--kamailio"])
def test_an_output_folder_that_cannot_be_written_is_refused_before_anything_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    case: str, option: str,
) -> None:
    config_file = site_file(tmp_path)
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder\n")
    bad = {"a file": blocker, "under a file": blocker / "asterisk",
           "not writable": tmp_path / "locked", "parent read-only": tmp_path / "locked" / "x"}[
        case]
    (tmp_path / "locked").mkdir()
    _read_only(monkeypatch, tmp_path / "locked")
    out = bad if option == "--out" else tmp_path / "asterisk"
    args = ["--config", str(config_file), "render-conf", "--out", str(out)]
    if option == "--kamailio":
        args += ["--kamailio", str(bad)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"{option} {bad}: " in err and "Traceback" not in err
    assert not (tmp_path / "secrets.json").exists()
    assert not (tmp_path / "asterisk").exists() and list((tmp_path / "locked").iterdir()) == []
    assert blocker.read_text() == "not a folder\n"
    if option == "--out":
        with pytest.raises(DeployError, match=f"--out {re.escape(str(bad))}: "):
            render_to(config_file, bad)
        assert not (tmp_path / "secrets.json").exists()


def test_diff_into_a_file_is_refused_and_a_failed_write_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = site_file(tmp_path)
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    assert main(["--config", str(config_file), "render-conf", "--out", str(blocker),
                 "--diff"]) == 2
    assert f"--out {blocker}: not a directory" in capsys.readouterr().err
    out = tmp_path / "asterisk"
    (out / ".pjsip.conf.tmp").mkdir(parents=True)  # where pjsip.conf is staged: an OSError
    with pytest.raises(DeployError, match=f"cannot write {re.escape(str(out / 'pjsip.conf'))}"):
        render_to(config_file, out)
    assert main(["--config", str(config_file), "render-conf", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"cannot write {out / 'pjsip.conf'}: " in err and "Traceback" not in err
    assert (tmp_path / "secrets.json").exists()  # the store went first, as always


def test_the_controller_without_a_store_names_the_keys_and_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = site_file(tmp_path)
    assert main(["--config", str(config_file), "check-config"]) == 2
    err = capsys.readouterr().err
    assert "  ami.secret: required key is missing" in err
    assert "site.secrets_file: no secrets store" in err and "callctl render-conf" in err


def test_reload_commands_follow_the_files_and_name_a_separate_config() -> None:
    assert reload_commands(["callctl-inbound.conf", "extensions.conf", "callctl-queues.conf"],
                           "/etc/asterisk") == ["asterisk -rx 'dialplan reload'",
                                                "asterisk -rx 'module reload app_queue.so'"]
    assert reload_commands(["pjsip.conf", "asterisk.conf"], "/etc/callctl-x") == [
        "asterisk -C /etc/callctl-x/asterisk.conf -rx 'core restart gracefully'"]


def test_queue_render_conf_is_the_same_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = site_file(tmp_path)
    assert main(["--config", str(config_file), "queue", "render-conf", "--out",
                 str(tmp_path / "asterisk")]) == 0
    assert (tmp_path / "asterisk" / "pjsip.conf").exists()
    assert "21 files written" in capsys.readouterr().out


def test_the_compose_stack_renders_from_its_example_and_shares_one_store() -> None:
    """No Docker engine here: the compose file is checked for what the entrypoint needs."""
    example = REPO / "docker" / "controller.example.toml"
    files = render_files(load_site(example))
    assert "contact = sip:sip.carrier.example:5060" in files["pjsip.conf"]
    secrets_file = Path(tomllib.loads(example.read_text())["site"]["secrets_file"])
    compose = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())["services"]
    for service, mode in (("asterisk", ""), ("controller", ":ro")):
        volumes = compose[service]["volumes"]
        assert "./controller.toml:/etc/callctl/controller.toml:ro" in volumes, service
        assert f"callctl-secrets:{secrets_file.parent}{mode}" in volumes, service
    uid = re.search(r"--uid (\d+)", (REPO / "docker" / "Dockerfile.controller").read_text())
    assert uid is not None
    owner = compose["asterisk"]["environment"]["CALLCTL_SECRETS_OWNER"]
    assert owner == f"{uid.group(1)}:{uid.group(1)}"
    asterisk_image = (REPO / "docker" / "Dockerfile.asterisk").read_text()
    assert 'ENTRYPOINT ["/usr/local/bin/asterisk-entrypoint"]' in asterisk_image
    for image in ("Dockerfile.asterisk", "Dockerfile.controller"):  # nothing secret baked in
        text = (REPO / "docker" / image).read_text()
        assert not re.search(r"^(COPY|ADD) .*(secrets|controller[.a-z]*\.toml)", text, re.M), image
