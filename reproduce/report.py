"""The report: match runs to the paper's rows, aggregate them over seeds, write Markdown, CSV and PNG.

A classification run matches a row when dataset, recipe, student, teacher and method agree;
its method column comes from its ``--kd`` name (``kd``/``kdt4`` -> KD, the recipe's DIST name ->
DIST, no ``--kd`` -> baseline; a run without KD of a row's teacher model is that row's teacher
when the recipe trains its teachers). Only finished runs enter the statistics: mean and sample
standard deviation (n - 1) of the best and of the last-epoch score.
"""
from __future__ import annotations

import csv
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from distkd.errors import UserError
from reproduce import methods
from reproduce.paper import RECIPES, PaperRow, reference_rows
from reproduce.runs import Run, find_runs

# --- report ------------------------------------------------------------------------------------

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


# --- render ------------------------------------------------------------------------------------

METHOD_NAMES = {"teacher": "Teacher", "baseline": "Baseline", "kd": "KD (T=4)", "dist": "DIST",
                "dist_mimic": "DIST+mimic"}
METHODS_TITLE = (f"{methods.TABLE}: KD, DKD and DIST, with and without logit standardisation (LS), on the DIST "
                 "paper's CIFAR-100 recipe (top1, %); Published: each method's authors' number")
CSV_COLUMNS = ("group", "source", "dataset", "metric", "student", "teacher", "method", "paper", "best_mean",
               "best_std", "last_mean", "last_std", "diff_best", "n_finished", "n_unfinished", "status",
               "published_in")


def _title(line: Line) -> str:
    if line.row is None:
        return "Your own rows (no paper row matches these runs)"
    if line.group == methods.TABLE:
        return METHODS_TITLE
    if line.row.source == "project":
        return f"{line.group}: project benchmark, not in the paper ({line.row.metric}, %)"
    return f"{line.group} ({line.row.metric}, %)"


def fmt_stats(stats: Stats | None) -> str:
    if stats is None:
        return "—"
    return f"{stats.mean:.2f}" if stats.std is None else f"{stats.mean:.2f} ± {stats.std:.2f}"


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def _groups(lines: Sequence[Line]) -> dict[str, list[Line]]:
    groups: dict[str, list[Line]] = {}
    for line in lines:
        groups.setdefault(_title(line), []).append(line)
    return groups


def to_markdown(lines: Sequence[Line], runs: Sequence[Run], problems: Sequence[str] = ()) -> str:
    """Tables by paper table, then the user's own rows, then every run with its status."""
    out = []
    for title, group in _groups(lines).items():
        published = group[0].group == methods.TABLE
        paper = "Published | Source" if published else "Paper"
        out += [f"### {title}", "",
                f"| Student <- Teacher | Method | {paper} | Best (mean ± std) | Last epoch (mean ± std) "
                f"| Δ best − {'published' if published else 'paper'} | Seeds | Status |",
                "|---|---|---|---|---|---|---|---|" + ("---|" if published else "")]
        for line in group:
            seeds = len(line.evaluated) if line.evaluated else len(line.finished)
            name = methods.TITLES.get(line.method, line.method) if published else METHOD_NAMES.get(line.method,
                                                                                                   line.method)
            paper = f"{_fmt(line.paper)} | {line.source or '—'}" if published else _fmt(line.paper)
            out.append(f"| {line.label} | {name} | {paper} "
                       f"| {fmt_stats(line.best)} | {fmt_stats(line.last)} | {_fmt(line.diff, signed=True)} "
                       f"| {seeds} | {line.status} |")
        if published:
            out += [""] + [f"- {key}: {text}" for key, text in methods.SOURCES.items()]
        out.append("")
    if not lines:
        out += ["No runs found.", ""]
    out += ["### Runs", "", "| Experiment | Seed | Status | Best | Last |", "|---|---|---|---|---|"]
    for run in sorted(runs, key=lambda r: r.name):
        out.append(f"| {run.name} | {run.seed if run.seed is not None else '—'} | {run.status} "
                   f"| {_fmt(run.best)} | {_fmt(run.last)} |")
    if problems:
        out += ["", "### Unreadable", ""] + [f"- {problem}" for problem in problems]
    return "\n".join(out) + "\n"


def csv_records(lines: Sequence[Line]) -> list[dict[str, object]]:
    records = []
    for line in lines:
        best, last = line.best, line.last
        first = line.runs[0] if line.runs else None
        records.append({
            "group": line.group,
            "source": line.row.source if line.row else "own",
            "dataset": line.row.dataset if line.row else first.dataset,
            "metric": line.row.metric if line.row else "",
            "student": line.row.student_model if line.row else first.student,
            "teacher": line.row.teacher_model if line.row else (first.teacher or ""),
            "method": line.method,
            "paper": "" if line.paper is None else line.paper,
            "best_mean": "" if best is None else round(best.mean, 4),
            "best_std": "" if best is None or best.std is None else round(best.std, 4),
            "last_mean": "" if last is None else round(last.mean, 4),
            "last_std": "" if last is None or last.std is None else round(last.std, 4),
            "diff_best": "" if line.diff is None else round(line.diff, 4),
            "n_finished": len(line.evaluated) if line.evaluated else len(line.finished),
            "n_unfinished": len(line.unfinished),
            "status": line.status,
            "published_in": methods.SOURCES.get(line.source, ""),
        })
    return records


def write_csv(lines: Sequence[Line], path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(csv_records(lines))


def write_png(lines: Sequence[Line], path: Path) -> None:
    """One panel per table: per method the paper's score (hatched) beside your best (mean, std bar)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = {title: group for title, group in _groups(lines).items() if any(line.best or line.paper for line in group)}
    if not groups:
        groups = {"No runs found": []}
    fig, axes = plt.subplots(len(groups), 1, figsize=(13, 3.6 * len(groups)), squeeze=False)
    colors = {"teacher": "tab:gray", "baseline": "tab:blue", "kd": "tab:orange", "dist": "tab:green",
              "dist_mimic": "tab:olive", "kd_ls": "tab:red", "dkd": "tab:purple", "dkd_ls": "tab:pink",
              "dist_ls": "tab:cyan", "kd_pub": "tab:brown"}
    for ax, (title, group) in zip(axes[:, 0], groups.items()):
        labels = list(dict.fromkeys(line.label for line in group))
        columns = list(dict.fromkeys(line.method for line in group))
        width = 0.8 / max(len(columns), 1)
        values = []
        for line in group:
            x = labels.index(line.label) + (columns.index(line.method) - (len(columns) - 1) / 2) * width
            color = colors.get(line.method, "tab:purple")
            name = METHOD_NAMES.get(line.method) or methods.TITLES.get(line.method, line.method)
            if line.paper is not None:
                ax.bar(x - width / 4, line.paper, width / 2, color=color, alpha=0.35, hatch="//",
                       edgecolor=color, label=f"{name} (paper)")
                values.append(line.paper)
            if line.best is not None:
                ax.bar(x + width / 4, line.best.mean, width / 2, yerr=line.best.std or 0, color=color, capsize=2,
                       label=f"{name} (yours)")
                values += [line.best.mean - (line.best.std or 0), line.best.mean + (line.best.std or 0)]
        if values:
            ax.set_ylim(max(0.0, min(values) - 5), max(values) + 2)
        ax.set_xticks(range(len(labels)), labels, rotation=15, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel("score (%)")
        handles, names = ax.get_legend_handles_labels()
        unique = dict(zip(names, handles))
        if unique:
            ax.legend(unique.values(), unique.keys(), fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- write -------------------------------------------------------------------------------------

def write_report(experiments: str | Path, out: str | Path | None = None, paper_csv: str | Path | None = None) -> str:
    """Write ``report.md``, ``report.csv`` and ``report.png`` to ``out`` (default: ``experiments``);
    return the Markdown."""
    experiments = Path(experiments)
    if not experiments.is_dir():
        raise UserError(f"experiments folder not found: '{experiments}'; pass the --output folder of your runs")
    out = Path(out) if out is not None else experiments
    out.mkdir(parents=True, exist_ok=True)
    runs, problems = find_runs(experiments)
    lines = build_lines(runs, reference_rows(paper_csv))
    markdown = to_markdown(lines, runs, problems)
    (out / "report.md").write_text(markdown)
    write_csv(lines, out / "report.csv")
    write_png(lines, out / "report.png")
    return markdown
