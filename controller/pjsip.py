"""How Asterisk names our PJSIP endpoints: the agents' interfaces and the trunk dial strings.

An agent's id is its PJSIP endpoint name, so agent ``1001`` rings at, and is a queue member
as, the interface ``PJSIP/1001``; a customer's number is dialed through a trunk endpoint as
``PJSIP/<number>@<trunk>``.
"""

from __future__ import annotations

TECHNOLOGY = "PJSIP/"


def agent_interface(agent_id: str) -> str:
    """The interface of agent ``agent_id``: ``1001`` is ``PJSIP/1001``."""
    return f"{TECHNOLOGY}{agent_id}"


def agent_of_interface(interface: str) -> str | None:
    """The agent id of a PJSIP interface (``PJSIP/1001`` is ``1001``); None for another
    technology (``Local/...``, ``SIP/...``), which no agent of ours uses."""
    return interface.removeprefix(TECHNOLOGY) if interface.startswith(TECHNOLOGY) else None


def trunk_dial_string(number: str, trunk: str) -> str:
    """What Originate dials to reach ``number`` through the PJSIP endpoint ``trunk``."""
    return f"{TECHNOLOGY}{number}@{trunk}"
