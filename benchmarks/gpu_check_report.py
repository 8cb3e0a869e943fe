"""The Markdown report of the GPU check (``benchmarks/gpu_check.py``): the tables the steps print,
parsed and copied; the targets of issue 25 judged on the measured metrics; the exit status.

Targets, judged on a GPU run only: KD step <= 1.05 x (student step + teacher forward); DIST KD step
within 2 % of KL KD; end-to-end img/s >= 90 % of the bound, the smaller of the KD step's img/s and
the uint8 loader's img/s at the trainer's worker count (the table names which one binds).
"""
from __future__ import annotations

import time

TARGETS = {"step_ratio": 1.05, "dist_vs_kl": 0.02, "e2e_share": 0.90}


class Report:
    """The report half of :class:`benchmarks.gpu_check_steps.Check`: it reads ``self.metrics``,
    ``self.status``, ``self.sections``, ``self.s`` (the sizes), ``self.dry_run``, ``self.start``,
    ``self.out``."""

    def targets(self) -> list[tuple[str, str, str, bool | None]]:
        """(target, measured, bound, met) rows; met is None where it was not measured (or a dry run)."""
        rows: list[tuple[str, str, str, bool | None]] = []
        judge = not self.dry_run
        for pair in self.s.pairs.split(","):
            for loss in ("dist", "kd"):
                for suffix in ("", "_compiled"):
                    value = self.metrics.get(f"{pair}|{loss}|ratio{suffix}")
                    label = f"{pair} {loss}{' compiled' if suffix else ''}: c / (a+b)"
                    rows.append((label, f"{value:.3f}" if value else "not measured",
                                 f"<= {TARGETS['step_ratio']}",
                                 (value <= TARGETS["step_ratio"]) if value and judge else None))
            for suffix in ("", "_compiled"):
                value = self.metrics.get(f"{pair}|dist_over_kd{suffix}")
                rows.append((f"{pair}{' compiled' if suffix else ''}: DIST / KL KD step",
                             f"{value:.3f}" if value else "not measured", f"<= {1 + TARGETS['dist_vs_kl']:.2f}",
                             (value <= 1 + TARGETS["dist_vs_kl"]) if value and judge else None))
        e2e = self.metrics.get("e2e_img_s")
        step = self.metrics.get("tv_resnet18:tv_resnet34|dist|img_s")
        loader = self.metrics.get(f"data|uint8|{self.s.e2e_workers}")
        if e2e and step:
            bound, which = step, "KD step"
            if loader and loader < step:
                bound, which = loader, f"uint8 loader, {self.s.e2e_workers} workers"
            rows.append((f"end-to-end img/s vs the bound ({which})", f"{e2e:.0f} / {bound:.0f} = {e2e / bound:.2f}",
                         f">= {TARGETS['e2e_share']}", (e2e / bound >= TARGETS["e2e_share"]) if judge else None))
        else:
            rows.append(("end-to-end img/s vs the bound", "not measured", f">= {TARGETS['e2e_share']}", None))
        return rows

    def write_report(self) -> None:
        took = time.monotonic() - self.start
        lines = [f"# GPU check{' (dry run on the CPU: tiny sizes, targets not judged)' if self.dry_run else ''}",
                 "", f"`bash benchmarks/gpu_check.sh{' --dry-run' if self.dry_run else ''}`, {took:.0f}s "
                 f"(deadline {self.s.budget_s:.0f}s).", "", "| step | status | s | note |", "|---|---|---|---|"]
        lines += [f"| {n} | {st} | {sec:.0f} | {md(note)[:300]} |" for n, st, sec, note in self.status]
        lines += ["", "## Targets (issue 25)", "", "| target | measured | bound | met |", "|---|---|---|---|"]
        lines += [f"| {t} | {m} | {b} | {'n/a' if ok is None else ('yes' if ok else '**no**')} |"
                  for t, m, b, ok in self.targets()]
        (self.out / "gpu_check.md").write_text("\n".join(lines + [""] + self.sections) + "\n")

    def exit_code(self) -> int:
        """0 every step ran and every target was met; 1 a step failed (or ran out of time); 2 a target missed."""
        if any(state != "ok" for _, state, _, _ in self.status):
            return 1
        if any(ok is False for *_, ok in self.targets()):
            return 2
        return 0


def md(text: str) -> str:
    """``text`` fit for one Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def join_tables(lines: list[str]) -> str:
    """Markdown table lines, a blank line between tables."""
    out, previous_header = [], None
    for line in lines:
        if line.startswith("|---") or line.startswith("|-"):
            out.append(line)
            continue
        if out and out[-1].startswith("|") and previous_header is not None and line.count("|") != previous_header:
            out.append("")
        if not out or not out[-1].startswith("|"):
            previous_header = line.count("|")
        out.append(line)
    return "\n".join(out)


def parse_rows(lines: list[str], first: str, *must: str) -> list[dict[str, str]]:
    """Rows of the Markdown table whose header starts with ``first`` (and has the columns ``must``)."""
    rows, header = [], None
    for line in lines:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == first:
            header = cells if all(m in cells for m in must) else None
        elif header and not line.startswith("|-") and len(cells) == len(header):
            rows.append(dict(zip(header, cells)))
        elif not line.startswith("|-"):
            header = None
    return rows
