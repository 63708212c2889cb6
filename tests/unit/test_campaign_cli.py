"""``callctl campaign`` and ``callctl dnc`` end to end through ``main`` with a temp store."""

from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path

import pytest

from controller.cli.main import main
from controller.store import open_store

CONTROLLER_TOML = """
[http]
api_token = "test-token"
[ami]
username = "callctl"
secret = "s3cret"
[ari]
username = "callctl"
password = "s3cret"
[store]
url = "{store_url}"
"""

CAMPAIGN_TOML = """
trunk = "trunk"
caller_id = "+12125550100"
dialing_mode = "progressive"
[agents]
queue = "sales"
"""

LEADS_CSV = "phone,name,account\n2125550101,Ada,A-1\n2125550102,Bob,A-2\nnope,Bad,A-3\n"


class Cli:
    """Runs ``callctl --config <tmp> ...`` and keeps what it printed."""

    def __init__(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], store_url: str
    ) -> None:
        self.dir = tmp_path
        self.config = tmp_path / "controller.toml"
        self.config.write_text(CONTROLLER_TOML.format(store_url=store_url))
        self._capsys = capsys

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        status = main(["--config", str(self.config), *argv])
        captured = self._capsys.readouterr()
        return status, captured.out, captured.err

    def refused(self, *argv: str) -> tuple[int, str]:
        """Exit status and standard error of a command refused by argparse or by the command."""
        try:
            status, _, err = self(*argv)
        except SystemExit as done:
            assert isinstance(done.code, int)
            return done.code, self._capsys.readouterr().err
        return status, err

    def json(self, *argv: str) -> object:
        status, out, err = self(*argv, "--json")
        assert status == 0, err
        return json.loads(out)

    def file(self, name: str, text: str | bytes) -> str:
        path = self.dir / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
        return str(path)


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], store_url: str) -> Cli:
    return Cli(tmp_path, capsys, store_url)


@pytest.fixture
def demo(cli: Cli) -> Cli:
    status, _, err = cli("campaign", "create", "demo", "--config",
                         cli.file("demo.toml", CAMPAIGN_TOML))
    assert status == 0, err
    return cli


def test_create_reports_bad_settings_with_file_and_key_path(cli: Cli) -> None:
    bad = cli.file("bad.toml", "ring_timeout_seconds = 10\nspeed = 3\n" + CAMPAIGN_TOML)
    status, _, err = cli("campaign", "create", "demo", "--config", bad)
    assert status == 2
    assert bad in err
    assert "ring_timeout_seconds: Input should be greater than or equal to 15" in err
    assert "speed: unknown key" in err
    nested = cli.file("nested.toml", CAMPAIGN_TOML + "typo = 1\n[amd]\naction = 'shout'\n")
    status, _, err = cli("campaign", "create", "demo", "--config", nested)
    assert status == 2
    assert "agents.typo: unknown key" in err and "amd.action: Input should be" in err


def test_create_warns_of_an_abandon_target_above_the_legal_limit(cli: Cli) -> None:
    loose = cli.file("loose.toml", CAMPAIGN_TOML + "[abandon]\ntarget_percent = 5\n")
    status, out, err = cli("campaign", "create", "loose", "--config", loose)
    assert status == 0 and "created" in out
    assert "warning: abandon.target_percent 5 is above the 3 %" in err
    strict = cli.file("strict.toml", CAMPAIGN_TOML)
    status, _, err = cli("campaign", "create", "strict", "--config", strict)
    assert status == 0 and err == ""


def test_create_twice_is_refused(demo: Cli) -> None:
    status, _, err = demo("campaign", "create", "demo", "--config", str(demo.dir / "demo.toml"))
    assert (status, err.strip()) == (1, "callctl: campaign 'demo' already exists")


def test_update_replaces_the_settings_and_names_what_changed(demo: Cli) -> None:
    faster = demo.file(
        "faster.toml", "line_cap = 20\n" + CAMPAIGN_TOML.replace("progressive", "predictive")
    )
    status, out, err = demo("campaign", "update", "demo", "--config", faster)
    assert (status, out, err) == (
        0, "campaign 'demo' settings revision 2: dialing_mode, line_cap changed\n", "")
    assert demo.json("campaign", "update", "demo", "--config", faster) == {
        "campaign": "demo", "revision": 2, "changed": []}
    report = demo.json("campaign", "status", "demo")
    assert isinstance(report, dict)
    assert (report["dialing_mode"], report["settings_revision"]) == ("predictive", 2)


def test_printed_settings_are_a_file_update_takes_back_unchanged(demo: Cli) -> None:
    status, out, _ = demo("campaign", "settings", "demo")
    assert status == 0 and out.startswith("# campaign 'demo', settings revision 1\n")
    assert 'queue = "sales"' in out
    status, out, _ = demo("campaign", "update", "demo", "--config", demo.file("back.toml", out))
    assert (status, out) == (0, "campaign 'demo' settings unchanged (revision 1)\n")
    shown = demo.json("campaign", "settings", "demo")
    assert isinstance(shown, dict)
    assert (shown["revision"], shown["settings"]["agents"]["queue"]) == (1, "sales")


def test_update_refuses_bad_settings_other_windows_and_a_stopped_campaign(demo: Cli) -> None:
    bad = demo.file("bad.toml", "line_cap = 0\n" + CAMPAIGN_TOML)
    status, _, err = demo("campaign", "update", "demo", "--config", bad)
    assert status == 2 and bad in err and "line_cap: Input should be greater than" in err
    windows = demo.file("windows.toml", CAMPAIGN_TOML + "[abandon]\nwindows_hours = [1]\n")
    status, _, err = demo("campaign", "update", "demo", "--config", windows)
    assert status == 1 and "abandon.windows_hours cannot change" in err
    status, _, err = demo("campaign", "update", "ghost", "--config", str(demo.dir / "demo.toml"))
    assert (status, "no campaign named 'ghost'" in err) == (1, True)
    demo("campaign", "start", "demo")
    demo("campaign", "stop", "demo")
    loose = demo.file("loose.toml", CAMPAIGN_TOML + "[abandon]\ntarget_percent = 5\n")
    status, _, err = demo("campaign", "update", "demo", "--config", loose)
    assert status == 1 and "campaign 'demo' is stopped: its settings are final" in err
    shown = demo.json("campaign", "settings", "demo")
    assert isinstance(shown, dict) and shown["revision"] == 1


def test_import_reports_bad_rows_and_is_idempotent(demo: Cli) -> None:
    leads = demo.file("leads.csv", LEADS_CSV)
    status, out, err = demo("campaign", "import", "demo", leads)
    assert status == 0
    assert "2 new" in out
    assert "line 4: not a phone number 'nope'" in err
    report = demo.json("campaign", "import", "demo", leads)
    assert isinstance(report, dict)
    assert (report["new"], report["updated"], report["unchanged"]) == (0, 0, 2)
    assert report["invalid_rows"][0]["line"] == 4


def test_import_without_phone_column_fails_and_keeps_data(demo: Cli) -> None:
    demo("campaign", "import", "demo", demo.file("leads.csv", LEADS_CSV))
    status, _, err = demo("campaign", "import", "demo", demo.file("bad.csv", "name\nAda\n"))
    assert status == 1
    assert "bad.csv: line 1: no phone column" in err
    report = demo.json("campaign", "status", "demo")
    assert isinstance(report, dict) and report["leads"]["total"] == 2


def test_import_into_unknown_campaign_or_missing_file(demo: Cli) -> None:
    status, _, err = demo("campaign", "import", "ghost", demo.file("l.csv", LEADS_CSV))
    assert (status, "no campaign named 'ghost'" in err) == (1, True)
    status, _, err = demo("campaign", "import", "demo", str(demo.dir / "missing.csv"))
    assert (status, "cannot read" in err) == (1, True)


def test_import_cp1252_file_warns(demo: Cli) -> None:
    data = "phone,name\n2125550101,José\n".encode("cp1252")
    status, _, err = demo("campaign", "import", "demo", demo.file("w.csv", data))
    assert status == 0
    assert "not UTF-8" in err and "cp1252" in err


def test_state_transitions_are_validated(demo: Cli) -> None:
    assert demo("campaign", "resume", "demo")[0] == 1
    assert demo("campaign", "start", "demo")[:2] == (0, "campaign 'demo': created -> running\n")
    assert demo("campaign", "pause", "demo")[0] == 0
    status, _, err = demo("campaign", "pause", "demo")
    assert status == 1 and "cannot pause a paused campaign (only from running)" in err
    assert demo("campaign", "resume", "demo")[0] == 0
    assert demo("campaign", "stop", "demo")[0] == 0
    assert demo("campaign", "start", "demo")[0] == 1
    rows = demo.json("campaign", "list")
    assert isinstance(rows, list)
    assert [(r["name"], r["state"]) for r in rows] == [("demo", "stopped")]


def test_status_and_list_output(demo: Cli) -> None:
    demo("campaign", "import", "demo", demo.file("leads.csv", LEADS_CSV))
    status, out, _ = demo("campaign", "status", "demo")
    assert status == 0
    assert "campaign demo: created (progressive)" in out
    assert "total 2" in out
    status, out, _ = demo("campaign", "list")
    assert out.splitlines()[1].split()[:3] == ["demo", "created", "2"]


def test_export_has_leads_custom_fields_and_dnc_flag(demo: Cli) -> None:
    demo("campaign", "import", "demo", demo.file("leads.csv", LEADS_CSV))
    assert demo("dnc", "add", "--campaign", "demo", "212-555-0102")[0] == 0
    out_file = demo.dir / "out.csv"
    status, out, _ = demo("campaign", "export", "demo", str(out_file))
    assert status == 0 and "exported 2 rows" in out
    with out_file.open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [(r["phone"], r["name"], r["account"], r["on_dnc"]) for r in rows] == [
        ("+12125550101", "Ada", "A-1", "0"), ("+12125550102", "Bob", "A-2", "1")
    ]


def test_dnc_commands(demo: Cli) -> None:
    status, out, _ = demo("dnc", "add", "+12125550101", "+442079460958")
    assert (status, out.strip()) == (0, "2 number(s) added to the global DNC list")
    status, _, err = demo("dnc", "add", "2125550101")
    assert status == 1 and "give +CC or --region" in err
    assert demo("dnc", "add", "--region", "us", "2125550103")[0] == 0
    listed = demo.json("dnc", "list")
    assert isinstance(listed, list)
    assert [r["phone"] for r in listed] == ["+12125550101", "+12125550103", "+442079460958"]
    assert demo("dnc", "remove", "+12125550101")[1].startswith("1 number(s) removed")
    numbers = demo.file("dnc.txt", "phone\n2125550104\n\nbogus1\n")
    status, out, err = demo("dnc", "import", "--campaign", "demo", numbers)
    assert status == 0 and "1 new" in out and "line 4" in err
    campaign_list = demo.json("dnc", "list", "--campaign", "demo")
    assert isinstance(campaign_list, list)
    assert [r["phone"] for r in campaign_list] == ["+12125550104"]
    status, _, err = demo("dnc", "list", "--campaign", "ghost")
    assert status == 1 and "no campaign named 'ghost'" in err


def test_recycle_counts_then_recycles_and_refuses_bad_input_with_exit_2(
    demo: Cli, store_url: str
) -> None:
    demo("campaign", "import", "demo", demo.file("leads.csv", LEADS_CSV))

    async def finish_a_lead() -> None:
        store = await open_store(store_url)
        await store.execute(
            "UPDATE leads SET state = 'done', attempts = 3, last_result = 'no_answer',"
            " last_result_at = '2026-01-01T00:00:00.000000+00:00' WHERE phone = '+12125550101'"
        )
        await store.close()

    asyncio.run(finish_a_lead())
    status, out, _ = demo("campaign", "recycle", "demo", "--result", "no_answer", "--dry-run")
    assert (status, out) == (0, "campaign 'demo': would recycle 1 lead(s)\n")
    assert demo.json("campaign", "recycle", "demo", "--result", "no_answer", "--result", "busy",
                     "--older-than", "24") == {
        "campaign": "demo", "recycled": 1, "on_dnc": 0, "dry_run": False
    }
    status, out, _ = demo("campaign", "recycle", "demo", "--result", "no_answer")
    assert (status, out) == (0, "campaign 'demo': recycled 0 lead(s)\n")

    for argv, problem in [
        ((), "at least one result or disposition"),
        (("--result", "human", "--older-than", "-1"), "argument --older-than: a number, 0 or"),
        (("--result", "not_dialed"), "argument --result: invalid choice: 'not_dialed'"),
        (("--disposition", "sale"), "--disposition: campaign 'demo' has no disposition sale"),
    ]:
        status, err = demo.refused("campaign", "recycle", "demo", *argv)
        assert status == 2 and problem in err, (argv, err)
        assert "<Result." not in err  # the choices as the user types them


def test_supervise_log_refuses_a_since_that_is_no_time(cli: Cli) -> None:
    status, err = cli.refused("supervise", "log", "--since", "yesterday")
    assert status == 2 and "argument --since: not an ISO-8601 date or time" in err


def test_every_level_has_help(cli: Cli) -> None:
    for argv in (["campaign"], ["campaign", "import"], ["campaign", "update"],
                 ["campaign", "recycle"],
                 ["campaign", "settings"], ["dnc"], ["dnc", "add"]):
        with pytest.raises(SystemExit) as done:
            cli(*argv, "--help")
        assert done.value.code == 0


def test_status_watch_refreshes_until_interrupted(
    demo: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps: list[float] = []

    def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr("controller.cli.campaign.time.sleep", fake_sleep)
    status, out, _ = demo("campaign", "status", "demo", "--watch", "--interval", "0.5")
    assert status == 130
    assert out.count("campaign demo: created") == 2
    assert sleeps == [0.5, 0.5]
