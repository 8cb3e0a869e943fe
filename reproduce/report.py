"""The report: runs beside the paper's rows (:mod:`reproduce.matching`), written as Markdown, CSV and PNG."""
from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from distkd.errors import UserError
from reproduce import methods
from reproduce.matching import Line, Stats, build_lines
from reproduce.paper import reference_rows
from reproduce.runs import Run, find_runs

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
