"""NodeWatch: when this controller's node is lost, from its AMI connection's life (pure)."""

from __future__ import annotations

from controller.nodes.watch import ChannelsGone, NodeLost, NodeWatch

START = "2026-12-02 16:00:00"


def connected_watch(lost_after: float = 5.0) -> NodeWatch:
    watch = NodeWatch(lost_after, now=0.0)
    assert watch.resynced(START) == ChannelsGone(first_sight=True)
    return watch


def test_a_connection_down_lost_after_seconds_loses_the_node_once() -> None:
    watch = connected_watch()
    watch.connection_lost(10.0)
    assert watch.tick(14.9) is None
    watch.connection_lost(12.0)  # still the same outage: counted from 10 s
    assert watch.tick(15.0) == NodeLost("AMI down for 5.0 s", channels_live=False)
    assert watch.tick(30.0) is None  # declared once per outage


def test_back_in_time_to_the_same_asterisk_only_settles_missed_hangups() -> None:
    watch = connected_watch()
    watch.connection_lost(10.0)
    assert watch.tick(12.0) is None
    assert watch.resynced(START) == ChannelsGone(first_sight=False)
    assert watch.tick(100.0) is None  # the outage ended: nothing counts on


def test_back_to_a_restarted_asterisk_loses_the_node_even_within_the_bound() -> None:
    watch = connected_watch()
    watch.connection_lost(10.0)
    restarted = "2026-12-02 16:05:00"
    assert watch.resynced(restarted) == NodeLost(
        f"Asterisk restarted (started {restarted})", channels_live=True)
    assert watch.tick(100.0) is None  # back, on the new Asterisk


def test_a_restart_after_the_node_was_declared_lost_is_not_a_second_loss() -> None:
    watch = connected_watch()
    watch.connection_lost(10.0)
    assert isinstance(watch.tick(15.0), NodeLost)
    assert watch.resynced("2026-12-02 16:05:00") == ChannelsGone(first_sight=False)


def test_a_node_not_reached_within_the_bound_of_the_start_is_lost() -> None:
    watch = NodeWatch(5.0, now=100.0)
    assert watch.tick(104.0) is None
    assert watch.tick(105.0) == NodeLost("AMI down for 5.0 s", channels_live=False)
    # reached at last: calls only the store holds whose channels are gone are an earlier run's
    assert watch.resynced(START) == ChannelsGone(first_sight=True)


def test_a_reconnect_between_two_ticks_is_a_resync_and_nothing_else() -> None:
    watch = connected_watch()
    assert watch.resynced(START) == ChannelsGone(first_sight=False)
    assert watch.tick(1000.0) is None
