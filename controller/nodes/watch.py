"""Whether this controller's node is lost, from what its AMI connection shows (pure).

``NodeWatch`` is fed the connection's life (lost, back after a resync with the Asterisk's start
time) and a ticker's clock, and answers what to do with the node's open inbound calls:

* ``NodeLost``: the node is gone, and with it every open call of the node: the AMI connection
  has been down ``lost_after`` seconds, or it came back to an Asterisk that restarted (a new
  start time: its channels, and so the calls, are gone). Declared once per outage.
* ``ChannelsGone``: the connection is back to the same Asterisk: the calls this controller
  follows whose channels are not live any more hung up while nobody listened, and end as the
  missed Hangup would have ended them. At the first sight of the node (``first_sight``) the
  store may also hold open calls of an earlier run whose channels are gone: nobody saw their
  end, so they are lost with the node.

The watch starts as if the connection had just been lost: a node never reached within
``lost_after`` of the controller's start is lost too (its calls are an earlier run's).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NodeLost:
    reason: str
    # the model's channels are the node's live ones (it was just resynced), not the stale
    # ones of a connection that is down
    channels_live: bool


@dataclass(frozen=True, slots=True)
class ChannelsGone:
    first_sight: bool


Verdict = NodeLost | ChannelsGone | None


class NodeWatch:
    def __init__(self, lost_after: float, now: float) -> None:
        self._lost_after = lost_after
        self._down_since: float | None = now
        self._declared = False  # NodeLost said for the current outage
        self._started: str | None = None  # the Asterisk's start time at the last resync

    def connection_lost(self, now: float) -> None:
        """The connection is down (seen again and again while it stays down)."""
        if self._down_since is None:
            self._down_since = now

    def tick(self, now: float) -> Verdict:
        down_since = self._down_since
        if self._declared or down_since is None or now - down_since < self._lost_after:
            return None
        self._declared = True
        return NodeLost(f"AMI down for {now - down_since:.1f} s", channels_live=False)

    def resynced(self, started: str) -> Verdict:
        """The connection is back and the model resynced; ``started`` is when the Asterisk
        it reached started (CoreStatus), which changes only with a restart."""
        previous, declared = self._started, self._declared
        self._started, self._down_since, self._declared = started, None, False
        if previous is not None and started != previous and not declared:
            return NodeLost(f"Asterisk restarted (started {started})", channels_live=True)
        return ChannelsGone(first_sight=previous is None)
