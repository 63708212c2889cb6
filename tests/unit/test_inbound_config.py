"""Inbound config: valid shapes load, every bad-config class names its key path."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from controller.config import Config, ConfigError, parse_config, validation_problems
from controller.inbound.destinations import (
    AnnouncementDestination,
    ExternalDestination,
    QueueDestination,
    VoicemailDestination,
    parse_destination,
)

EXAMPLE = Path(__file__).parents[2] / "examples" / "inbound-demo.toml"
REQUIRED = {
    "http": {"api_token": "t"},
    "ami": {"username": "u", "secret": "s"},
    "ari": {"username": "u", "password": "p"},
}


def config_with(inbound: dict[str, Any]) -> Config:
    return parse_config({**REQUIRED, "inbound": inbound})


def validate_in(inbound: dict[str, Any], config_dir: Path) -> Config:
    """Validate as load_config will once it passes the config file's directory as context."""
    return Config.model_validate(
        {**REQUIRED, "inbound": inbound}, context={"config_dir": config_dir}
    )


def minimal(**queues: dict[str, Any]) -> dict[str, Any]:
    return {"queues": {"sales": {}, **queues}}


def problems_of(inbound: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        config_with(inbound)
    return caught.value.problems


def test_empty_section_is_the_default() -> None:
    assert config_with({}).inbound.queues == {}


def test_demo_fragment_loads() -> None:
    inbound = config_with(tomllib.loads(EXAMPLE.read_text())["inbound"]).inbound
    assert inbound.queues["sales"].overflow[0].destination == QueueDestination(queue="support")
    assert inbound.queues_of_agent("1003") == (("sales", 1), ("support", 0))


@pytest.mark.filterwarnings("error")  # pydantic warned on every destination and overflow rule
def test_demo_fragment_dumps_and_loads_back_unchanged() -> None:
    inbound = config_with(tomllib.loads(EXAMPLE.read_text())["inbound"]).inbound
    dumped = inbound.model_dump(mode="json")
    assert dumped["queues"]["sales"]["overflow"][0]["destination"] == {
        "type": "queue", "queue": "support"
    }
    assert config_with(dumped).inbound == inbound


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("queue:sales", QueueDestination(queue="sales")),
        ("external:+442079460000", ExternalDestination(number="+442079460000")),
        ("external:+442079460000@out", ExternalDestination(number="+442079460000", trunk="out")),
        ("voicemail:100@default", VoicemailDestination(mailbox="100@default")),
        ("announcement:closed", AnnouncementDestination(sound="closed")),
    ],
)
def test_destination_string_form_round_trips(text: str, expected: object) -> None:
    assert parse_destination(text) == expected
    assert str(expected) == text


def test_destination_table_form() -> None:
    inbound = config_with(
        minimal(
            support={
                "overflow": [
                    {
                        "kind": "max_wait",
                        "seconds": 5,
                        "destination": {"type": "voicemail", "mailbox": "7"},
                    }
                ]
            }
        )
    ).inbound
    assert str(inbound.queues["support"].overflow[0].destination) == "voicemail:7"


@pytest.mark.parametrize(
    ("destination", "message"),
    [
        ("queue:salez", "queue 'salez' is not defined"),
        ("fax:1", "is not a destination"),
        ("external:12345", "not a possible E.164 number"),
        ("external:+44 20 7946 0000", "E.164 form: '+442079460000'"),
    ],
)
def test_bad_overflow_destination_names_its_path(destination: str, message: str) -> None:
    rule = {"kind": "max_wait", "seconds": 5, "destination": destination}
    problems = problems_of(
        minimal(support={"overflow": [{**rule, "destination": "queue:sales"}, rule]})
    )
    assert len(problems) == 1
    path, text = problems[0]
    assert path.startswith("inbound.queues.support.overflow[1].destination")
    assert message in text


def test_unknown_queue_of_issue_example_is_reported_exactly() -> None:
    rule = {"kind": "max_callers", "callers": 3, "destination": "queue:salez"}
    ok = {"kind": "max_wait", "seconds": 9, "destination": "voicemail:1"}
    assert problems_of({"queues": {"sales": {"overflow": [ok, rule]}}}) == [
        ("inbound.queues.sales.overflow[1].destination", "queue 'salez' is not defined")
    ]


def test_overflow_loop_is_rejected_at_the_closing_edge() -> None:
    def to(queue: str) -> dict[str, Any]:
        return {"overflow": [{"kind": "max_wait", "seconds": 30, "destination": f"queue:{queue}"}]}

    problems = problems_of({"queues": {"a": to("b"), "b": to("c"), "c": to("a")}})
    assert problems == [
        ("inbound.queues.c.overflow[0].destination", "overflow loop a -> b -> c -> a")
    ]


def test_overflow_chain_without_loop_is_accepted() -> None:
    rule = {"kind": "max_wait", "seconds": 30}
    inbound = config_with(
        {
            "queues": {
                "a": {"overflow": [{**rule, "destination": "queue:b"}]},
                "b": {"overflow": [{**rule, "destination": "queue:c"}]},
                "c": {"overflow": [{**rule, "destination": "voicemail:1"}]},
                "d": {"overflow": [{**rule, "destination": "queue:c"}]},
            }
        }
    ).inbound
    assert set(inbound.queues) == {"a", "b", "c", "d"}


def test_self_overflow_is_a_loop() -> None:
    rule = {"kind": "no_agents", "destination": "queue:sales"}
    assert problems_of({"queues": {"sales": {"overflow": [rule]}}}) == [
        ("inbound.queues.sales.overflow[0].destination", "overflow loop sales -> sales")
    ]


def schedule(**changes: Any) -> dict[str, Any]:
    return {"timezone": "Europe/Paris", "after_hours": "announcement:closed", **changes}


@pytest.mark.parametrize(
    ("changes", "path", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone", "unknown timezone 'Mars/Olympus'"),
        # zoneinfo raises OSError (file name too long, a folder), not ZoneInfoNotFoundError
        ({"timezone": "A" * 300}, "timezone", f"unknown timezone '{'A' * 60}...' (use"),
        ({"timezone": "America"}, "timezone", "unknown timezone 'America'"),
        ({"hours": {"mon": ["17:00-09:00"]}}, "hours.mon[0]", "ends before it starts"),
        ({"hours": {"tue": ["9-17"]}}, "hours.tue[0]", "is not a time of day"),
        ({"hours": {"wed": ["09:00-25:00"]}}, "hours.wed[0]", "00:00 to 24:00"),
        (
            {"hours": {"thu": ["09:00-12:00", "11:30-14:00"]}},
            "hours.thu",
            "[0] 09:00-12:00 and [1] 11:30-14:00 overlap",
        ),
        ({"hours": {"funday": ["09:00-10:00"]}}, "hours.funday", "unknown key"),
        (
            {"holidays": [{"start": "2025-12-31", "end": "2025-12-30"}]},
            "holidays[0]",
            "before it starts",
        ),
        ({"after_hours": "queue:nowhere"}, "after_hours", "queue 'nowhere' is not defined"),
        (
            {
                "special_days": [
                    {"date": "2025-12-24", "hours": ["09:00-10:00"]},
                    {"date": "2025-12-24", "hours": ["11:00-12:00"]},
                ]
            },
            "special_days",
            "[1] repeats the date 2025-12-24 of [0]",
        ),
    ],
)
def test_bad_schedule_names_its_path(changes: dict[str, Any], path: str, message: str) -> None:
    problems = problems_of({"queues": {"sales": {}}, "schedules": {"office": schedule(**changes)}})
    assert len(problems) == 1
    assert problems[0][0] == f"inbound.schedules.office.{path}"
    assert message in problems[0][1]


def test_number_references_must_resolve() -> None:
    problems = problems_of(
        {"queues": {"sales": {}}, "numbers": {"+441": {"queue": "salez", "schedule": "nope"}}}
    )
    assert problems == [
        ("inbound.numbers.+441.queue", "queue 'salez' is not defined"),
        ("inbound.numbers.+441.schedule", "schedule 'nope' is not defined"),
    ]


def test_duplicate_member_and_reserved_queue_name() -> None:
    assert problems_of({"queues": {"sales": {"members": ["1001", "1001"]}}}) == [
        ("inbound.queues.sales.members", "Value error, [1] repeats agent '1001' of [0]")
    ]
    assert problems_of({"queues": {"general": {}}}) == [
        ("inbound.queues.general", "'general' is reserved by queues.conf")
    ]


def test_unknown_rule_kind_and_missing_threshold() -> None:
    [(path, _)] = problems_of({"queues": {"sales": {"overflow": [{"kind": "max_fun"}]}}})
    assert path.startswith("inbound.queues.sales.overflow[0]")
    [(path, message)] = problems_of(
        {"queues": {"sales": {"overflow": [{"kind": "max_wait", "destination": "voicemail:1"}]}}}
    )
    assert (path, message) == (
        "inbound.queues.sales.overflow[0].seconds",
        "required key is missing",
    )


ICS = b"""BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VEVENT
UID:1
SUMMARY:Christmas
DTSTART;VALUE=DATE:20201225
DTEND;VALUE=DATE:20201227
RRULE:FREQ=YEARLY
EXDATE;VALUE=DATE:20231225
END:VEVENT
BEGIN:VEVENT
UID:2
SUMMARY:Company day
DTSTART;VALUE=DATE:20250704
END:VEVENT
END:VCALENDAR
"""


def test_holiday_file_is_resolved_against_the_config_dir(tmp_path: Path) -> None:
    (tmp_path / "cal").mkdir()
    (tmp_path / "cal" / "holidays.ics").write_bytes(ICS)
    inbound = validate_in(
        {
            "queues": {"sales": {}},
            "schedules": {"office": schedule(holiday_files=["cal/holidays.ics"])},
        },
        tmp_path,
    ).inbound
    [file] = inbound.schedules["office"].holiday_files
    assert file.path == "cal/holidays.ics"
    assert [event.summary for event in file.events] == ["Christmas", "Company day"]
    assert file.events[0].days == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read holiday file 'holidays.ics'"),
        (b"this is not a calendar", "holiday file 'holidays.ics': not an iCalendar file"),
        (
            b"BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:x\nEND:VEVENT\nEND:VCALENDAR\n",
            "'x' has no DTSTART",
        ),
    ],
)
def test_bad_holiday_file_names_its_path(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    if content is not None:
        (tmp_path / "holidays.ics").write_bytes(content)
    inbound = {
        "queues": {"sales": {}},
        "schedules": {"office": schedule(holiday_files=["holidays.ics"])},
    }
    with pytest.raises(ValidationError) as caught:
        validate_in(inbound, tmp_path)
    [(path, text)] = validation_problems(caught.value)
    assert path == "inbound.schedules.office.holiday_files[0]"
    assert message in text


def test_region_and_vip_normalisation_config() -> None:
    [(path, message)] = problems_of({"default_region": "XX"})
    assert path == "inbound.default_region"
    assert "unknown region 'XX'" in message
