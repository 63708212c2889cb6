"""The wait estimate: the documented formula, its rounds, and the no-agent case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.inbound.estimate import average_handle_time, estimate_wait
from controller.inbound.snapshot import AgentSnapshot
from controller.state.model import AgentState

NOW = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)


def agent(state: AgentState, seconds_ago: float = 0.0) -> AgentSnapshot:
    return AgentSnapshot("a", state, NOW - timedelta(seconds=seconds_ago))


def test_nobody_serving_is_unbounded() -> None:
    assert estimate_wait(1, (), NOW, 100) is None
    assert estimate_wait(1, (agent(AgentState.PAUSED),), NOW, 100) is None


def test_available_agents_take_the_first_callers_at_once() -> None:
    agents = (agent(AgentState.AVAILABLE), agent(AgentState.AVAILABLE))
    assert estimate_wait(1, agents, NOW, 100) == 0
    assert estimate_wait(2, agents, NOW, 100) == 0
    assert estimate_wait(3, agents, NOW, 100) == 100


def test_busy_agents_free_up_after_their_remaining_handle_time() -> None:
    agents = (agent(AgentState.ON_CALL, 30), agent(AgentState.ON_CALL, 80))
    assert estimate_wait(1, agents, NOW, 100) == 20  # the one 80 s in is done first
    assert estimate_wait(2, agents, NOW, 100) == 70
    assert estimate_wait(3, agents, NOW, 100) == 120  # second round of the first agent
    assert estimate_wait(1, (agent(AgentState.ON_CALL, 500),), NOW, 100) == 0  # overdue: any moment
    assert estimate_wait(1, (agent(AgentState.RINGING, 30),), NOW, 100) == 70  # ringing is busy


def test_wrapup_counts_in_each_cycle() -> None:
    agents = (agent(AgentState.ON_CALL, 40), agent(AgentState.WRAPUP, 2))
    assert estimate_wait(1, agents, NOW, 60, wrapup=10) == 8
    assert estimate_wait(2, agents, NOW, 60, wrapup=10) == 30
    assert estimate_wait(3, agents, NOW, 60, wrapup=10) == 78


@given(
    position=st.integers(1, 60),
    agents=st.integers(1, 8),
    handle_time=st.floats(1, 1000),
)
def test_agents_starting_together_give_whole_rounds(
    position: int, agents: int, handle_time: float
) -> None:
    busy = tuple(agent(AgentState.ON_CALL) for _ in range(agents))
    rounds = -(-position // agents)  # ceil(position / agents)
    assert estimate_wait(position, busy, NOW, handle_time) == pytest.approx(rounds * handle_time)


def test_average_handle_time_falls_back_to_the_default() -> None:
    assert average_handle_time((), 180) == 180
    assert average_handle_time((60, 120), 180) == 90


def test_position_is_one_based() -> None:
    with pytest.raises(ValueError, match="1-based"):
        estimate_wait(0, (agent(AgentState.AVAILABLE),), NOW, 10)
