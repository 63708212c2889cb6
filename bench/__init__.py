"""Benchmarks that print tables: ``python -m bench`` (``make bench``) runs them all.

Convention for adding one: create ``bench/bench_<topic>.py`` with a function ``run()`` that
takes no argument and returns a ``bench.common.Table`` (title, columns, rows, notes), a list
of them, or a list of row dicts (one table titled by the module, columns from the first row).
``python -m bench`` imports every ``bench_*`` module in name order, calls ``run()``, prints
each returned table and the module's wall time; ``python -m bench <word>...`` runs only the
modules whose name contains a word. Benchmarks measure speed and quality and print them; they
assert nothing (tests do that), and each keeps its whole run within a few minutes on 2 cores.
"""
