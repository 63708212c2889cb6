"""Losing a node: when this controller's Asterisk is gone, or another node's controller is."""
