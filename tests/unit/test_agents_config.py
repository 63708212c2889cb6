"""``[agents]``: tables, ranges and a CSV merge into one set of accounts; every mistake names
its key path; the render gives each agent a phone, a number, hints and the feature codes."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from controller.agents.dialplan import login_device, paused_device, render_agents_dialplan
from controller.cli.main import main
from controller.config import Config, ConfigError, parse_config
from controller.site.deploy import load_site, render_to
from controller.site.secrets import read_secrets

REPO = Path(__file__).resolve().parents[2]
REQUIRED = {
    "http": {"api_token": "t"},
    "ami": {"username": "u", "secret": "s"},
    "ari": {"username": "u", "password": "p"},
    "inbound": {"queues": {"support": {}, "sales": {"members": ["1001"]}}},
}


def config_with(agents: dict[str, Any], config_dir: Path | None = None) -> Config:
    return parse_config({**REQUIRED, "agents": agents}, config_dir=config_dir)


def problems_of(agents: dict[str, Any], config_dir: Path | None = None) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        config_with(agents, config_dir)
    return caught.value.problems


def test_tables_ranges_and_a_csv_are_one_set_of_accounts(tmp_path: Path) -> None:
    (tmp_path / "agents.csv").write_text(
        "id,name,team,supervisor,queues\n3001,Zoe,night,yes,support:2 sales:1\n3002,,night,,\n")
    config = config_with({
        "1001": {"name": "Alice", "queues": ["support"], "team": "day", "supervisor": True},
        "1002": {"team": "day"},
        "range": [{"first": 2000, "last": 2499, "name": "Seat {id}", "queues": {"sales": 3}}],
        "csv": "agents.csv",
    }, tmp_path)
    accounts = config.agent_accounts
    assert len(accounts) == 504 and list(accounts)[:3] == ["1001", "1002", "2000"]
    assert accounts["2417"].name == "Seat 2417" and accounts["2417"].queues == {"sales": 3}
    assert accounts["3001"].supervisor and accounts["3001"].queues == {"support": 2, "sales": 1}
    assert not accounts["3002"].supervisor and accounts["3002"].name == ""
    # an inbound member is in the queue at its penalty too (the demo names members there)
    assert config.queues_of_agent("1001") == (("support", 0), ("sales", 0))
    assert config.agents.team_supervisors("1002") == ("1001",)
    assert config.agents.team_supervisors("2000") == ()  # no team, no supervisor


def test_an_inbound_member_not_in_agents_is_an_account_of_its_own() -> None:
    config = parse_config(REQUIRED)
    assert list(config.agent_accounts) == ["1001"]
    assert config.queues_of_agent("1001") == (("sales", 0),)


@pytest.mark.parametrize(
    ("agents", "key", "message"),
    [
        ({"9001": {}}, "agents.9001", "should match pattern"),
        ({"1001": {"queues": {"salez": 0}}}, "agents.1001.queues.salez",
         "queue 'salez' is not defined"),
        ({"1001": {"queues": {"support": -1}}}, "agents.1001.queues.support",
         "greater than or equal to 0"),
        ({"1001": {"tean": "x"}}, "agents.1001.tean", "unknown key"),
        ({"1001": {}, "range": [{"first": 1000, "last": 1002}]}, "agents.range[0]",
         "declares agent 1001, already [agents.1001]"),
        ({"range": [{"first": 1005, "last": 1002}]}, "agents.range[0]",
         "last (1002) is below first (1005)"),
        ({"range": [{"first": 8990, "last": 9010}]}, "agents.range[0]",
         "9000 is no agent id"),
        ({"1001": {"queues": {"sales": 2}}}, "inbound.queues.sales.members[0]",
         "penalty 0 differs from agents.1001.queues.sales"),
        ({"pause_reasons": {"1": "lunch", "2": "lunch"}}, "agents",
         "a name is given to two codes"),
        ({"pause_reasons": {"4": "missed"}}, "agents", "'missed' is an automatic one"),
        ({"pause_reasons": {"5": "wrapup-elsewhere"}}, "agents",
         "'wrapup-elsewhere' is an automatic one"),
        ({"feature_codes": {"pause_toggle": "*45"}}, "agents.feature_codes",
         "pause_toggle and login_toggle are both *45"),
        ({"auto_pause": {"salez": 3}}, "agents.auto_pause.salez", "not defined"),
        ({"csv": "missing.csv"}, "agents", "cannot read missing.csv"),
    ],
)
def test_a_mistake_names_its_key_path(agents: dict[str, Any], key: str, message: str,
                                      tmp_path: Path) -> None:
    problems = problems_of(agents, tmp_path)
    assert any(path == key and message in text for path, text in problems), problems


@pytest.mark.parametrize(
    ("queues", "key", "message"),
    [
        ({"support": {"members": ["1001", "alice"]}}, "inbound.queues.support.members[1].agent",
         "should match pattern"),
        ({"support": {}, "Support": {}}, "inbound.queues.Support",
         "'Support' is queue 'support' to Asterisk"),
        ({"General": {}}, "inbound.queues.General", "reserved by queues.conf"),
    ],
)
def test_a_queue_mistake_names_its_key_path(queues: dict[str, Any], key: str,
                                            message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({**REQUIRED, "inbound": {"queues": queues}})
    assert any(path == key and message in text for path, text in caught.value.problems), (
        caught.value.problems)


def test_a_csv_mistake_names_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id,queues\n3001,support:x\n")
    assert any("a.csv line 2: queues must read like" in text
               for _, text in problems_of({"csv": "a.csv"}, tmp_path))
    (tmp_path / "b.csv").write_text("id,name\n1001,Again\n")
    assert any("b.csv line 2 declares agent 1001, already [agents.1001]" in text
               for _, text in problems_of({"1001": {}, "csv": "b.csv"}, tmp_path))
    (tmp_path / "c.csv").write_text("name,id\nx,3001\n")
    assert any("the header must be id followed by" in text
               for _, text in problems_of({"csv": "c.csv"}, tmp_path))


def test_the_dialplan_dials_each_agent_and_sends_feature_codes_to_the_controller() -> None:
    config = config_with({"1001": {}, "1002": {}, "feature_codes": {"pause_toggle": "*77"}})
    text = render_agents_dialplan(config)
    assert "exten => 1002,1,Dial(PJSIP/1002,30)" in text
    assert f"exten => *451001,hint,{login_device('1001')}" in text
    assert f"exten => *771002,hint,{paused_device('1002')}" in text
    gosub = "Gosub(callctl-agent-feature,s,1"
    assert f"exten => *45,1,{gosub}(agent-feature,login_toggle,))" in text
    assert f"exten => _*51X.,1,{gosub}(supervise,listen,${{EXTEN:3}}))" in text
    assert f"exten => _*77X,1,{gosub}(agent-feature,pause,${{EXTEN:3}}))" in text
    assert f"exten => _*48X,1,{gosub}(agent-feature,disposition,${{EXTEN:3}}))" in text
    # the agent is the authenticated endpoint, and a missing controller is heard
    assert "${CHANNEL(endpoint)}" in text and "Playback(something-terribly-wrong)" in text
    assert "_100" not in (REPO / "dialplans" / "extensions.conf").read_text()


def site_file(tmp_path: Path) -> Path:
    data = tomllib.loads((REPO / "controller.example.toml").read_text())
    path = tmp_path / "controller.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def test_the_demo_agents_render_with_names_and_the_credentials_command_rotates_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = site_file(tmp_path)
    render_to(config_file, tmp_path / "asterisk")
    pjsip = (tmp_path / "asterisk" / "pjsip.conf").read_text()
    assert 'callerid = "Carol" <1003>' in pjsip
    assert load_site(config_file).config.agents.team_supervisors("1001") == ("1003",)
    before = read_secrets(tmp_path / "secrets.json")
    assert before is not None

    assert main(["--config", str(config_file), "agent", "credentials", "1002", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["username"] == "1002"
    assert shown["password"] == before.agent_passwords["1002"]

    assert main(["--config", str(config_file), "agent", "credentials", "1002", "--reset"]) == 0
    out = capsys.readouterr()
    after = read_secrets(tmp_path / "secrets.json")
    assert after is not None and after.agent_passwords["1002"] != before.agent_passwords["1002"]
    assert f"password: {after.agent_passwords['1002']}" in out.out
    assert "render-conf" in out.err
    assert {k: v for k, v in after.agent_passwords.items() if k != "1002"} == {
        k: v for k, v in before.agent_passwords.items() if k != "1002"}
    assert (tmp_path / "secrets.json").stat().st_mode & 0o777 == 0o600
    rendered = render_to(config_file, tmp_path / "asterisk")
    assert rendered.written == ["pjsip.conf"]
    assert after.agent_passwords["1002"] in (tmp_path / "asterisk" / "pjsip.conf").read_text()

    assert main(["--config", str(config_file), "agent", "credentials", "4444"]) == 2
    assert "agent 4444 is not configured" in capsys.readouterr().err
