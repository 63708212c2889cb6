"""The real-Asterisk testbed: a chrooted Asterisk 22 instance, its rendered config, and sipp.

Used by `make run` (the demo instance), by the integration tests (the test instance on other
ports) and by the benchmarks. It expects a source checkout: the templates live in the
repository's ``asterisk-conf/`` and ``dialplans/`` and the root builder in ``scripts/``.
"""
