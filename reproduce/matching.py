"""The report's lines: runs matched to the paper's rows and aggregated over seeds.

A classification run matches a row when dataset, recipe, student, teacher and method agree;
its method column comes from its ``--kd`` name (``kd``/``kdt4`` -> KD, the recipe's DIST name ->
DIST, no ``--kd`` -> baseline; a run without KD of a row's teacher model is that row's teacher
when the recipe trains its teachers). Only finished runs enter the statistics: mean and sample
standard deviation (n - 1) of the best and of the last-epoch score.
"""
from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from distkd_cli.recipes import RECIPES
from reproduce import methods
from reproduce.paper import PaperRow
from reproduce.runs import Run


@dataclass(frozen=True)
class Stats:
    n: int
    mean: float
    std: float | None  # None for a single value


def summarize(values: Sequence[float]) -> Stats | None:
    if not values:
        return None
    std = statistics.stdev(values) if len(values) > 1 else None
    return Stats(len(values), statistics.fmean(values), std)


@dataclass
class Line:
    """One (row, method) cell group of the report; ``row`` is None for the user's own rows."""

    group: str  # table name, or "own"
    row: PaperRow | None
    label: str
    method: str
    paper: float | None
    runs: list[Run] = field(default_factory=list)
    source: str = ""  # where ``paper`` was published, when not the DIST paper's table
    evaluated: list[float] = field(default_factory=list)  # teacher scores measured before KD

    @property
    def finished(self) -> list[Run]:
        return [run for run in self.runs if run.finished]

    @property
    def unfinished(self) -> list[Run]:
        return [run for run in self.runs if not run.finished]

    @property
    def best(self) -> Stats | None:
        if self.evaluated:
            return summarize(self.evaluated)
        return summarize([run.best for run in self.finished if run.best is not None])

    @property
    def last(self) -> Stats | None:
        if self.evaluated:
            return summarize(self.evaluated)
        return summarize([run.last for run in self.finished if run.last is not None])

    @property
    def diff(self) -> float | None:
        best = self.best
        return None if best is None or self.paper is None else best.mean - self.paper

    @property
    def status(self) -> str:
        if self.evaluated:
            return f"pretrained, evaluated in {len(self.evaluated)} KD run(s)"
        if not self.runs:
            pretrained = self.method == "teacher" and self.row is not None and not _teachers_trained(self.row.recipe)
            return "pretrained weights, not evaluated by these runs" if pretrained else "not run"
        parts = [f"{len(self.finished)} finished"]
        for run in self.unfinished:
            parts.append(f"{run.name}: {run.status}")
        return "; ".join(parts)


def _teachers_trained(recipe: str) -> bool:
    """CIFAR-100, digits and Cityscapes train their teachers; ImageNet and COCO use released weights."""
    return recipe == "seg" or (recipe in RECIPES and RECIPES[recipe].train_teacher)


def kd_column(run: Run) -> str | None:
    """The paper column a distillation run belongs to, or None when its method is not the paper's."""
    if run.task != "classification":
        return run.kd
    if run.recipe not in RECIPES:
        return None
    recipe = RECIPES[run.recipe]
    method = methods.run_signature(run.kd or "", run.kd_options)  # the method and all its options
    for column, (_, name, _) in (("kd", recipe.kd), ("dist", recipe.dist)):
        if method is not None and method == methods.run_signature(name, {}):
            return column
    return None


def roles_in_row(run: Run, row: PaperRow) -> list[str]:
    """The methods of ``row`` that ``run`` is a result for (several for a shared baseline)."""
    if (run.task, run.dataset, run.recipe) != (row.task, row.dataset, row.recipe):
        return []
    if run.kd is None:
        roles = ["baseline"] if run.student == row.student_model else []
        if run.student == row.teacher_model and _teachers_trained(row.recipe):
            roles.append("teacher")
        return roles
    if (run.student, run.teacher) != (row.student_model, row.teacher_model):
        return []
    column = kd_column(run)
    if method_column(run, row) not in (None, column):  # e.g. KD with mdistiller's loss weights: not the paper's KD
        return []
    return [column] if column in row.roles else []


def _own_key(run: Run) -> tuple:
    return (run.task, run.dataset, run.recipe, run.student, run.teacher or "", run.kd or "")


def _line(cells: dict[tuple[int, str], Line], index: int, row: PaperRow, role: str) -> Line:
    if (index, role) not in cells:
        cells[(index, role)] = Line(row.table, row, row.label, role, row.paper_value(role))
    return cells[(index, role)]


def method_column(run: Run, row: PaperRow) -> str | None:
    """The ``cifar100-methods`` column (:mod:`reproduce.methods`) of a run of the row's pair, or None."""
    if (run.task, run.dataset, run.recipe, row.table) != ("classification", "cifar100", "cifar", "cifar100"):
        return None
    if (run.student, run.teacher) != (row.student_model, row.teacher_model):
        return None
    return methods.column_of(row, run.kd, run.kd_options, run.loss_weights)


def _method_lines(runs: Sequence[Run], rows: Sequence[PaperRow]) -> tuple[list[Line], set[int]]:
    """The comparison of KD methods on the CIFAR-100 pairs some run of a method column matched: every
    paper-recipe column (``not run`` where empty), the published-recipe ones that have runs. Returns
    the lines and the ids of the runs they hold."""
    cells: dict[tuple[int, str], Line] = {}
    for run in runs:
        for index, row in enumerate(rows):
            column = method_column(run, row)
            if column is not None:
                if (index, column) not in cells:
                    value, source = methods.published(row, column)
                    cells[(index, column)] = Line(methods.TABLE, row, row.label, column, value, source=source)
                cells[(index, column)].runs.append(run)
    lines = []
    for index, row in enumerate(rows):
        if not any(i == index for i, _ in cells):
            continue
        for column in methods.COLUMNS:
            if (index, column) in cells:
                lines.append(cells[(index, column)])
            elif column in methods.PAPER_RECIPE_COLUMNS:
                value, source = methods.published(row, column)
                lines.append(Line(methods.TABLE, row, row.label, column, value, source=source))
    return lines, {id(run) for line in lines for run in line.runs}


def build_lines(runs: Sequence[Run], rows: Sequence[PaperRow]) -> list[Line]:
    """Lines of every row some run matched (all its methods, ``not run`` where empty), the comparison
    of KD methods on CIFAR-100 (:mod:`reproduce.methods`), then the user's own rows (runs that matched
    nothing), grouped by dataset, models and ``--kd``."""
    cells: dict[tuple[int, str], Line] = {}
    own: dict[tuple, Line] = {}
    method_lines, in_methods = _method_lines(runs, rows)
    for run in runs:
        matched = id(run) in in_methods
        for index, row in enumerate(rows):
            for role in roles_in_row(run, row):
                matched = True
                _line(cells, index, row, role).runs.append(run)
                # pretrained teachers: the score the trainer measured before distilling
                distilled = role in ("kd", "dist", "dist_mimic")
                if distilled and run.teacher_score is not None and not _teachers_trained(row.recipe):
                    _line(cells, index, row, "teacher").evaluated.append(run.teacher_score)
        if not matched:
            key = _own_key(run)
            label = f"{run.student} <- {run.teacher}" if run.teacher else run.student
            own.setdefault(key, Line("own", None, f"{run.dataset}: {label}", run.kd or "baseline", None))
            own[key].runs.append(run)
    lines = []
    for index, row in enumerate(rows):
        if any(i == index for i, _ in cells):
            lines += [_line(cells, index, row, role) for role in row.roles]
    return lines + method_lines + [own[key] for key in sorted(own)]
