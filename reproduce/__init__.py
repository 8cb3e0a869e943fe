"""Reproducing the paper's tables (the tooling behind ``tools/reproduce.py`` and ``tools/report.py``).

:mod:`.paper` (the paper's rows, recipes and logs) -> :mod:`.runs` (reading experiment folders) ->
:mod:`.sweep` (the commands of a table, run in order) and :mod:`.report` (runs beside the paper).
Uses the :mod:`distkd` library; never the trainers' internals.
"""
