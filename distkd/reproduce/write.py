"""The report end to end: find runs, match them to the paper, write Markdown, CSV and PNG."""
from __future__ import annotations

from pathlib import Path

from distkd.errors import UserError
from distkd.reproduce.paper import reference_rows
from distkd.reproduce.render import to_markdown, write_csv, write_png
from distkd.reproduce.report import build_lines
from distkd.reproduce.runs import find_runs


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
