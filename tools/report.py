"""Put your runs beside the paper's numbers.

    python tools/report.py experiments             # print the table, write experiments/report.{md,csv,png}
    python tools/report.py experiments --out reports/

Each experiment's args.yaml and metrics are matched to a paper row (dataset, student, teacher,
method); finished runs are averaged over seeds (mean ± sample std of the best and the last-epoch
score), unfinished ones are listed with their last epoch, and runs that match no row appear as
your own rows. See docs/reproduce.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distkd.reproduce.write import write_report  # noqa: E402
from distkd.utils.cli import run_cli  # noqa: E402


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiments", help="folder holding the experiment folders (e.g. experiments)")
    parser.add_argument("--out", default=None, help="where to write report.md/.csv/.png (default: EXPERIMENTS)")
    parser.add_argument("--paper-csv", default=None, help="paper table CSV (default: the bundled copy)")
    return parser


def main() -> None:
    args = get_args_parser().parse_args()
    markdown = write_report(args.experiments, args.out, args.paper_csv)
    print(markdown, end="")


if __name__ == "__main__":
    run_cli(main)
