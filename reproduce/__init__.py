"""Reproducing the paper's tables (the tooling behind ``tools/reproduce.py`` and ``tools/report.py``).

:mod:`.paper` (the paper's rows) and :mod:`.paper_logs` (its ImageNet logs) -> :mod:`.runs` (reading
experiment folders) -> :mod:`.jobs` and :mod:`.dense_jobs` (the commands of a table) -> :mod:`.sweep`
(running them in order) and :mod:`.matching` -> :mod:`.report` (runs beside the paper). These use the
:mod:`distkd` library and :mod:`distkd_cli`, never the trainers; the entry points :mod:`.cli`,
:mod:`.report_cli` and :mod:`.demo` read the trainers' options or run the trainer.
"""
