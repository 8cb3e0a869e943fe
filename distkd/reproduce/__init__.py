"""Reproducing the paper's tables: its rows (:mod:`.paper`), the sweep commands (:mod:`.commands`),
running them (:mod:`.sweep`), reading runs (:mod:`.runs`) and the report (:mod:`.report`,
:mod:`.render`, :mod:`.write`). The command-line tools are ``tools/reproduce.py`` and
``tools/report.py``."""
