"""The agent status machine: a table of (position, event) -> decision, the toggles, and the
auto-pause after unanswered rings in a row."""

from __future__ import annotations

import pytest

from controller.agents.machine import (
    AgentEvent,
    AgentPosition,
    AgentStatus,
    Answered,
    Change,
    EndWrapup,
    LogIn,
    LogOut,
    Pause,
    QueueAction,
    Refusal,
    RingNoAnswer,
    ToggleLogin,
    TogglePause,
    Unpause,
    agent_transition,
)

OUT = AgentPosition()
AVAILABLE = AgentPosition(AgentStatus.AVAILABLE)
LUNCH = AgentPosition(AgentStatus.PAUSED, "lunch")
PAUSED = AgentPosition(AgentStatus.PAUSED)
J, L, P, U = QueueAction.JOIN, QueueAction.LEAVE, QueueAction.PAUSE, QueueAction.UNPAUSE
R = QueueAction.REJOIN


@pytest.mark.parametrize(
    ("position", "event", "expected"),
    [
        (OUT, LogIn(), Change(AVAILABLE, (J,))),
        (AVAILABLE, LogIn(), Change(AVAILABLE, (J,))),
        (LUNCH, LogIn(), Change(AVAILABLE, (J, U))),
        (OUT, LogOut(), Refusal("not logged in")),
        (LUNCH, LogOut(), Change(OUT, (L,))),
        (OUT, ToggleLogin(), Change(AVAILABLE, (J,))),
        (AVAILABLE, ToggleLogin(), Change(OUT, (L,))),
        (LUNCH, ToggleLogin(), Change(OUT, (L,))),
        (OUT, Pause("lunch"), Refusal("not logged in")),
        (AVAILABLE, Pause("lunch"), Change(LUNCH, (P,))),
        (LUNCH, Pause("lunch"), Refusal("already paused (lunch)")),
        (LUNCH, Pause("break"), Change(AgentPosition(AgentStatus.PAUSED, "break"), (P,))),
        (AVAILABLE, TogglePause(), Change(PAUSED, (P,))),
        (LUNCH, TogglePause(), Change(AVAILABLE, (U,))),
        (OUT, TogglePause(), Refusal("not logged in")),
        (LUNCH, Unpause(), Change(AVAILABLE, (U,))),
        (AVAILABLE, Unpause(), Refusal("not paused")),
        (AVAILABLE, EndWrapup(), Change(AVAILABLE, (R,))),
        (LUNCH, EndWrapup(), Change(LUNCH, (R,))),
        (OUT, EndWrapup(), Refusal("not logged in")),
        (OUT, RingNoAnswer("q"), Change(OUT)),
        (LUNCH, RingNoAnswer("q"), Change(LUNCH)),
    ],
)
def test_every_event_in_every_position(
    position: AgentPosition, event: AgentEvent, expected: object
) -> None:
    assert agent_transition(position, event) == expected


def test_an_unpause_clears_the_reason() -> None:
    decision = agent_transition(LUNCH, Unpause())
    assert isinstance(decision, Change) and decision.position.reason == ""


def test_n_unanswered_rings_in_a_row_pause_with_reason_missed_per_queue() -> None:
    limits = {"sales": 2}
    position = AVAILABLE
    for event in (RingNoAnswer("sales"), RingNoAnswer("support"), RingNoAnswer("support")):
        decision = agent_transition(position, event, limits)
        assert isinstance(decision, Change) and decision.actions == ()
        position = decision.position
    assert position.missed == {"sales": 1, "support": 2}  # support has no limit
    answered = agent_transition(position, Answered("sales"), limits)
    assert isinstance(answered, Change) and answered.position.missed == {"support": 2}
    position = answered.position
    first = agent_transition(position, RingNoAnswer("sales"), limits)
    assert isinstance(first, Change) and first.actions == ()
    second = agent_transition(first.position, RingNoAnswer("sales"), limits)
    assert second == Change(AgentPosition(AgentStatus.PAUSED, "missed"), (P,))
