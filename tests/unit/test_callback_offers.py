"""The callback offer on the estimated wait: when it is due, its config's rules, and that such a
queue renders no periodic announcement (the controller offers instead)."""

from __future__ import annotations

import pytest

from controller.asterisk.events import ChanSpyStart, parse_ami
from controller.callbacks.config import CallbackConfig
from controller.callbacks.offers import offer_due
from controller.inbound.asterisk_conf import queue_options

from .test_inbound_config import config_with, problems_of

ON_ESTIMATE = CallbackConfig(offer_after=10, offer_every=30, offer_wait_above=60)


@pytest.mark.parametrize(("waited", "estimate", "last", "due"), [
    (9.9, 300.0, None, False),  # not waited offer_after yet
    (10.0, 300.0, None, True),
    (10.0, 60.0, None, False),  # an estimate at the threshold: about to be answered
    (10.0, 60.1, None, True),
    (10.0, None, None, True),  # nobody serving: the wait is unbounded
    (50.0, 300.0, 29.9, False),  # offered less than offer_every ago
    (50.0, 300.0, 30.0, True),
    (50.0, 20.0, 30.0, False),  # the estimate fell below the threshold since
])
def test_an_offer_is_due_past_offer_after_every_offer_every_while_the_estimate_is_above(
    waited: float, estimate: float | None, last: float | None, due: bool
) -> None:
    assert offer_due(ON_ESTIMATE, waited, estimate, last) is due


def test_on_the_estimate_alone_and_never_for_a_periodic_announcement_queue() -> None:
    at_once = CallbackConfig(offer_after=0, offer_wait_above=60)
    assert offer_due(at_once, 0.0, 61.0, None)
    assert not offer_due(CallbackConfig(offer_after=1), 500.0, None, None)  # app_queue offers


def test_offer_after_zero_needs_an_estimate_threshold() -> None:
    [(where, why)] = problems_of({"queues": {"q": {"callback": {"regions": ["CH"],
                                                                "offer_after": 0}}}})
    assert where == "inbound.queues.q.callback"
    assert "offer_after = 0 needs offer_wait_above" in why
    [(where, _)] = problems_of({"queues": {"q": {"callback": {"regions": ["CH"],
                                                              "offer_wait_above": 0}}}})
    assert where == "inbound.queues.q.callback.offer_wait_above"


def test_a_queue_offering_on_the_estimate_renders_no_periodic_announcement() -> None:
    config = config_with({"queues": {"q": {"callback": {"regions": ["CH"],
                                                        "offer_wait_above": 60}}}})
    options = queue_options(config.inbound.queues["q"])
    assert options["context"] == "callctl-callback-offer"  # a 1 still leaves to the booking
    assert not any(key.startswith("periodic-announce") for key in options)


def test_chanspystart_is_parsed_with_the_spyer_and_the_spied_channel() -> None:
    event = parse_ami({"Event": "ChanSpyStart",
                       "SpyerChannel": "Local/s@callctl-callback-offer-play-00000003;1",
                       "SpyeeChannel": "PJSIP/carrier-00000001", "SpyeeUniqueid": "1700.12"})
    assert event == ChanSpyStart(spyer_channel="Local/s@callctl-callback-offer-play-00000003;1",
                                 spyee_uniqueid="1700.12")
