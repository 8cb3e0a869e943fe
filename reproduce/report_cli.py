"""Put your runs beside the paper's numbers.

    python tools/report.py experiments             # print the table, write experiments/report.{md,csv,png}
    python tools/report.py experiments --out reports/

Each experiment's args.yaml and metrics are matched to a paper row (dataset, student, teacher,
method); finished runs are averaged over seeds (mean ± sample std of the best and the last-epoch
score), unfinished ones are listed with their last epoch, and runs that match no row appear as
your own rows. See docs/reproduce.md.

The paper's per-epoch curve beside one run of yours (the paper's ImageNet logs, release v0.0.1):

    python tools/report.py --run experiments/resnet18_resnet34_dist --paper-log auto
    python tools/report.py --run experiments/my_run --paper-log path/to/log.txt

``auto`` picks the row's log from the run's args.yaml, downloads it once (verified, SHA-256 recorded
in checkpoints/paper_logs/sha256.json) and writes RUN/paper_curve.png.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from distkd.errors import UserError
from distkd_cli.args import ArgumentParser
from reproduce.report import write_report


def get_args_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiments", nargs="?", help="folder holding the experiment folders (e.g. experiments)")
    parser.add_argument("--out", default=None, help="where to write report.md/.csv/.png (default: EXPERIMENTS)")
    parser.add_argument("--paper-csv", default=None, help="paper table CSV (default: the bundled copy)")
    parser.add_argument("--run", default=None, help="one run's folder, to draw beside the paper's log")
    parser.add_argument("--paper-log", default="auto", help="'auto', a log file name of the release, or a path")
    parser.add_argument("--tolerance", type=float, default=1.0, help="top-1 points that count as departing")
    parser.add_argument("--offline", action="store_true", help="never download the paper's log")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    if args.run:
        print(paper_curve(args))
        return
    if not args.experiments:
        raise UserError("pass the experiments folder (tools/report.py experiments) or one run (--run DIR)")
    markdown = write_report(args.experiments, args.out, args.paper_csv)
    print(markdown, end="")


def verified_fetch(url: str, target: Path, offline: bool) -> Path:
    """Download once (checksum-verified, atomic), then check the SHA-256 recorded on first download."""
    from distkd_cli.download import check_or_record, download

    path = download(url, target, offline=offline)
    check_or_record(path)
    return path


def paper_curve(args: argparse.Namespace) -> str:
    import yaml

    from reproduce import paper_logs

    run = Path(args.run)
    name = args.paper_log
    if name == "auto":
        if not (run / "args.yaml").is_file():
            raise UserError(f"no args.yaml in '{run}': pass --paper-log NAME_OR_PATH")
        cfg = yaml.safe_load((run / "args.yaml").read_text())
        name = paper_logs.log_name_for(cfg.get("model"), cfg.get("teacher_model"), cfg.get("config"))
    log = paper_logs.get_paper_log(name, lambda url, target: verified_fetch(url, target, args.offline))
    return paper_logs.compare(log, run, Path(args.out or run) / "paper_curve.png", args.tolerance)

