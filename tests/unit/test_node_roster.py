"""The site's nodes as a pure view of their leases (``nodes/roster.py``)."""

from __future__ import annotations

from controller.nodes.roster import forget_refusal, homeless_agents, roster

from .test_dialer_workers import ALIVE, GONE, NOW, lease


def test_every_name_any_table_mentions_is_one_row_and_only_live_workers_cover() -> None:
    workers = [lease("w1", "1001", ALIVE), lease("w2", "1002 1003", GONE),
               lease("w3", "1004", GONE)]
    views = roster({"n0": ALIVE, "w1": ALIVE}, workers, {"n9": 2}, {"w3": 1}, NOW)
    assert [view.name for view in views] == ["n0", "n9", "w1", "w2", "w3"]
    by_name = {view.name: view for view in views}
    assert by_name["n0"].dialer_agents is None and by_name["n9"].node_lease_until is None
    assert by_name["w1"].covers == ("1002", "1003", "1004")
    assert by_name["w2"].covers == by_name["w3"].covers == ()
    assert (by_name["n9"].open_calls, by_name["w3"].open_attempts) == (2, 1)


def test_a_name_is_kept_while_either_lease_lives_or_something_of_it_is_open() -> None:
    workers = [lease("w1", "", ALIVE), lease("w2", "1002", GONE), lease("w3", "1003", GONE)]
    views = {view.name: view for view in roster(
        {"n1": ALIVE, "w2": GONE, "w3": GONE}, workers, {"w3": 1}, {"w2": 1}, NOW)}
    assert "node lease until 2026-06-02T16:00:20+00:00" in (forget_refusal(views["n1"], NOW)
                                                            or "")
    assert "dialer lease until" in (forget_refusal(views["w1"], NOW) or "")
    assert "0 open call(s) and 1 open attempt(s) of w2" in (forget_refusal(views["w2"], NOW)
                                                            or "")
    assert "1 open call(s) and 0 open attempt(s) of w3" in (forget_refusal(views["w3"], NOW)
                                                            or "")
    settled = {view.name: view for view in roster({"w2": GONE}, workers, {}, {}, NOW)}
    assert forget_refusal(settled["w2"], NOW) is None


def test_homeless_agents_are_those_no_other_worker_names_alive_or_gone() -> None:
    workers = [lease("w1", "1001", ALIVE), lease("w2", "1002 1003 1004", GONE),
               lease("w3", "1003", GONE), lease("w4", "1004", ALIVE)]
    assert homeless_agents("w2", workers) == ["1002"]
    assert homeless_agents("w9", workers) == []
    assert homeless_agents("w2", [*workers, lease("w5", "", GONE)]) == []
