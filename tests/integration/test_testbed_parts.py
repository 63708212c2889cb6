"""The testbed's pure parts: scenario rendering, sipp result parsing (no Asterisk)."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.render import PLACEHOLDER, TemplateError, render
from testbed.sipp import SCENARIO_DEFAULTS, SCENARIO_DIR, Sipp, SippStats, scenario_text


def test_render_fills_every_placeholder_and_leaves_asterisk_syntax_alone() -> None:
    text = "bind = 127.0.0.1:@SIP_PORT@\nexten => _X.,1,Set(A=${EXTEN}@x)\n"
    assert render(text, {"SIP_PORT": "15060"}) == (
        "bind = 127.0.0.1:15060\nexten => _X.,1,Set(A=${EXTEN}@x)\n"
    )


def test_render_names_the_template_and_the_missing_value() -> None:
    with pytest.raises(TemplateError, match=r"pjsip\.conf: no value for @AMI_SECRET@"):
        render("secret = @AMI_SECRET@", {}, "pjsip.conf")


@pytest.mark.parametrize("scenario", sorted(p.stem for p in SCENARIO_DIR.glob("*.xml")))
def test_every_scenario_renders_with_its_defaults(scenario: str) -> None:
    # credentials are the only values without a default (agent_call)
    values = {**SCENARIO_DEFAULTS[scenario], "AUTH_USER": "1001", "AUTH_PASSWORD": "pw"}
    text = render(scenario_text(scenario), values, scenario)
    assert PLACEHOLDER.search(text) is None


def test_stats_come_from_the_last_csv_row_and_codes_from_the_trace(tmp_path: Path) -> None:
    sipp = Sipp("caller", tmp_path, local_ip="127.0.0.2", port=25060, media_port=26000)
    assert sipp.stats() == SippStats(0, 0, 0)
    (tmp_path / "stats.csv").write_text(
        "StartTime;TotalCallCreated;SuccessfulCall(C);FailedCall(C);\n"
        "x;1;0;0;\n"
        "x;3;2;1;\n"
    )
    (tmp_path / "messages.log").write_text(
        "----\nUDP message received [300] bytes :\n\nSIP/2.0 100 Trying\nVia: x\n\n"
        "----\nUDP message received [300] bytes :\n\nSIP/2.0 404 Not Found\nVia: x\n\n"
        "----\nUDP message received [300] bytes :\n\nBYE sip:caller@127.0.0.2 SIP/2.0\n"
    )
    assert sipp.stats() == SippStats(created=3, successful=2, failed=1)
    assert sipp.received_statuses() == [100, 404]
    assert sipp.received_requests() == ["BYE"]


def test_final_answers_count_an_answer_to_a_retransmitted_request_once(tmp_path: Path) -> None:
    sipp = Sipp("phone", tmp_path, local_ip="127.0.0.4", port=25060, media_port=26000)

    def answer(status: str, cseq: int) -> str:
        return (f"---------------------- 2026-12-07 11:40:57.1\nUDP message received [9] bytes :"
                f"\n\nSIP/2.0 {status}\nCSeq: {cseq} REGISTER\n\n")
    (tmp_path / "messages.log").write_text(
        answer("401 Unauthorized", 1) + answer("401 Unauthorized", 1)
        + answer("100 Trying", 2) + answer("200 OK", 2))
    assert sipp.received_statuses() == [401, 401, 100, 200]
    assert sipp.final_answers() == {1: [401], 2: [200]}
