"""Agents and supervisors: accounts (config), the agent state machine, its service, phone
feature codes, supervision sessions and per-agent numbers."""
