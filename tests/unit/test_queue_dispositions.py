"""The disposition an agent keys for its latest queue call: which call, which name, when it is
refused, and when it ends the wrap-up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from controller.agents.dispositions import KeyedDisposition, dispose_last_call
from controller.agents.machine import Refusal
from controller.inbound.config import QueueConfig, QueueDisposition
from controller.inbound.repository import AnsweredCall

NOW = datetime(2026, 12, 4, 15, tzinfo=UTC)
WINDOW = timedelta(minutes=10)
QUEUES = {
    "support": QueueConfig.model_validate({"wrapup": 30, "dispositions": {
        "1": "resolved", "2": "escalated", "9": {"name": "do-not-call", "dnc": True}}}),
    "sales": QueueConfig(),
}


def ended(seconds_ago: float | None, queue: str = "support",
          disposition: str | None = None) -> AnsweredCall:
    end = None if seconds_ago is None else NOW - timedelta(seconds=seconds_ago)
    return AnsweredCall("c1", queue, "+41441234567", NOW - timedelta(seconds=600), end,
                        disposition)


@pytest.mark.parametrize(("call", "key", "decision"), [
    (ended(5), "1", KeyedDisposition("c1", "support", "resolved", ends_wrapup=True)),
    (ended(29), "2", KeyedDisposition("c1", "support", "escalated", ends_wrapup=True)),
    # the caller asked not to be called: its number goes with the decision
    (ended(5), "9", KeyedDisposition("c1", "support", "do-not-call", ends_wrapup=True,
                                     do_not_call="+41441234567")),
    # after the queue's 30 s wrap-up: stored, nothing to end
    (ended(31), "1", KeyedDisposition("c1", "support", "resolved", ends_wrapup=False)),
    (ended(600), "1", KeyedDisposition("c1", "support", "resolved", ends_wrapup=False)),
    # keyed on another line while the call goes on
    (ended(None), "1", KeyedDisposition("c1", "support", "resolved", ends_wrapup=False)),
    (None, "1", Refusal("no queue call answered")),
    (ended(5, disposition="escalated"), "1", Refusal("call c1 is escalated already")),
    (ended(5), "3", Refusal("queue support has no disposition on key '3'")),
    (ended(5), "", Refusal("queue support has no disposition on key ''")),
    (ended(5, queue="sales"), "1", Refusal("queue sales has no disposition on key '1'")),
    (ended(5, queue="gone"), "1", Refusal("queue gone has no disposition on key '1'")),
    (ended(601), "1", Refusal("call c1 ended 10 min ago")),
])
def test_a_key_names_the_latest_calls_disposition_or_says_why_not(
    call: AnsweredCall | None, key: str, decision: KeyedDisposition | Refusal,
) -> None:
    assert dispose_last_call(call, key, QUEUES, NOW, WINDOW) == decision


@pytest.mark.parametrize(("dispositions", "error"), [
    ({"12": "resolved"}, "a disposition key is one digit, 0 to 9, not '12'"),
    ({"*": "resolved"}, "a disposition key is one digit"),
    ({"1": "Resolved"}, "String should match pattern"),
    ({"1": "resolved", "2": {"name": "resolved", "dnc": True}},
     "a disposition name is on more than one key: resolved"),
    ({"9": {"name": "do-not-call", "dnc": "maybe"}}, "dnc\n  Input should be a valid boolean"),
    ({"9": {"name": "do-not-call", "lead": "dnc"}}, "lead\n  Extra inputs are not permitted"),
])
def test_a_queues_dispositions_are_one_digit_keys_with_distinct_names(
    dispositions: dict[str, object], error: str,
) -> None:
    with pytest.raises(ValidationError, match=error):
        QueueConfig.model_validate({"dispositions": dispositions})


def test_a_disposition_is_a_name_or_a_table_with_dnc() -> None:
    queue = QueueConfig.model_validate({"dispositions": {
        "1": "resolved", "9": {"name": "do-not-call", "dnc": True}}})
    assert queue.dispositions == {"1": QueueDisposition(name="resolved"),
                                  "9": QueueDisposition(name="do-not-call", dnc=True)}
