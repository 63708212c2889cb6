"""queues.conf rendering: one section per queue with the options the controller relies on."""

from __future__ import annotations

import configparser
from datetime import UTC, datetime

from controller.inbound.asterisk_conf import (
    queue_app_options,
    render_inbound_dialplan,
    render_queues_conf,
)
from controller.inbound.config import InboundConfig

INBOUND = InboundConfig.model_validate(
    {
        "queues": {
            "sales": {
                "strategy": "leastrecent",
                "ring_timeout": 12,
                "wrapup": 7,
                "announce_position": True,
                "music_class": "jazz",
                "members": ["1001"],
            },
            "support": {"strategy": "rrmemory", "hold_audio": "ringing"},
        }
    }
)


def parsed() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(comment_prefixes=(";",))
    parser.read_string(render_queues_conf(INBOUND))
    return parser


def test_general_section_leaves_membership_to_the_controller() -> None:
    general = parsed()["general"]
    assert general["persistentmembers"] == "yes"
    assert general["shared_lastcall"] == "yes"


def test_queue_section_carries_the_configured_options() -> None:
    sales = parsed()["sales"]
    assert sales["strategy"] == "leastrecent"
    assert sales["timeout"] == "12"
    assert sales["wrapuptime"] == "7"
    assert sales["announce-position"] == "yes"
    assert sales["announce-holdtime"] == "no"
    assert sales["announce-frequency"] == "30"
    assert sales["musicclass"] == "jazz"
    assert "member" not in sales  # members join dynamically at login


def test_asterisk_never_overflows_on_its_own() -> None:
    for name in ("sales", "support"):
        section = parsed()[name]
        assert (section["joinempty"], section["leavewhenempty"], section["maxlen"]) == (
            "yes",
            "no",
            "0",
        )


def test_ringing_queue_has_no_music_and_asks_for_ringback() -> None:
    support = parsed()["support"]
    assert "musicclass" not in support
    assert support["announce-frequency"] == "0"
    assert queue_app_options(INBOUND.queues["support"]) == "r"
    assert queue_app_options(INBOUND.queues["sales"]) == ""


def test_empty_inbound_renders_only_general() -> None:
    parser = configparser.ConfigParser(comment_prefixes=(";",))
    parser.read_string(render_queues_conf(InboundConfig()))
    assert parser.sections() == ["general"]


ROUTED = InboundConfig.model_validate(
    {
        "queues": {"sales": {}, "support": {}},
        "schedules": {
            "office": {
                "timezone": "Europe/Berlin",
                "hours": {"mon": ["09:00-12:00", "13:00-17:30"], "sat": ["10:00-24:00"]},
                "holidays": [
                    "2026-12-25", "2026-12-28", {"start": "2027-11-29", "end": "2027-12-02"}
                ],
                "special_days": [{"date": "2026-12-24", "hours": ["09:00-12:00"]}],
                "after_hours": "announcement:closed",
            }
        },
        "numbers": {"5000": {"queue": "support"}, "5001": {"queue": "sales",
                                                            "schedule": "office"}},
    }
)
# 23:30 UTC on Nov 30 is already Dec 1 in Berlin: the horizon starts on the local date
RENDERED_AT = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)


def schedule_lines() -> list[str]:
    text = render_inbound_dialplan(ROUTED, "callctl", RENDERED_AT)
    section = text.split("[callctl-schedule-office]\n", 1)[1].split("\n\n", 1)[0]
    first, *rest = section.strip().splitlines()
    # "exten => s,1,App" and " same => n,App" / " same => n(label),App": steps as rendered
    return [first.split(",", 2)[2]] + [line.removeprefix(" same => n").removeprefix(",")
                                       for line in rest]


def test_controller_down_a_number_without_schedule_goes_straight_to_its_queue() -> None:
    text = render_inbound_dialplan(ROUTED, "callctl", RENDERED_AT)
    always = text.split("exten => 5000,", 1)[1].split("exten =>", 1)[0]
    assert "Set(CALLCTL_FALLBACK_QUEUE=support)" in always
    assert "Goto(callctl-queue,support,1)" in always
    office = text.split("exten => 5001,", 1)[1].split("\n\n", 1)[0]
    assert "Set(CALLCTL_FALLBACK_QUEUE=sales)" in office
    assert "Goto(callctl-schedule-office,s,1)" in office


def test_schedule_check_has_the_dates_of_the_coming_year_then_the_weekly_hours() -> None:
    steps = schedule_lines()
    checks = [s for s in steps if s.startswith("GotoIfTime")]
    assert checks == [
        # special day: its own hours, closed the rest of that date
        "GotoIfTime(09:00-11:59,*,24,dec,Europe/Berlin?open)",
        "GotoIfTime(*,*,24,dec,Europe/Berlin?closed)",
        # Friday Dec 25 is closed anyway; Monday Dec 28 differs from its weekday
        "GotoIfTime(*,*,28,dec,Europe/Berlin?closed)",
        # the holiday range: only its Monday differs from the weekly hours; Dec 2, 2027 is
        # past the horizon (which ends on Nov 30, 2027)
        "GotoIfTime(*,*,29,nov,Europe/Berlin?closed)",
        # weekly hours, the end minute excluded (Asterisk includes a range's last minute)
        "GotoIfTime(09:00-11:59,mon,*,*,Europe/Berlin?open)",
        "GotoIfTime(13:00-17:29,mon,*,*,Europe/Berlin?open)",
        "GotoIfTime(10:00-23:59,sat,*,*,Europe/Berlin?open)",
    ]
    assert steps[0].startswith("NoOp(schedule office in Europe/Berlin, dates from 2026-12-01")
    closed = steps.index(next(s for s in steps if s.startswith("(closed)")))
    assert steps[closed:] == [
        "(closed),Set(CALLCTL_SOUND=closed)",
        "Goto(callctl-announcement,s,1)",
        "(open),Goto(callctl-queue,${CALLCTL_FALLBACK_QUEUE},1)",
    ]
