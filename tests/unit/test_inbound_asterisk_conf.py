"""queues.conf rendering: one section per queue with the options the controller relies on."""

from __future__ import annotations

import configparser

from controller.inbound.asterisk_conf import queue_app_options, render_queues_conf
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
