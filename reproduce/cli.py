"""Print (default) or run, in order, every command that reproduces one of the paper's tables.

    python tools/reproduce.py cifar100                 # dry run: print the commands
    python tools/reproduce.py cifar100 --seeds 3 --run # train teachers, then every student
    python tools/reproduce.py digits --run --extra "--epochs 2"   # the CPU-sized check
    python tools/reproduce.py cifar100-methods         # KD, DKD, DIST with and without logit standardisation
    python tools/reproduce.py cifar100-methods --recipe published   # and each method's published setting
    python tools/reproduce.py imagenet_baseline --gpus 2  # the paper's 8-GPU runs on 2 GPUs (--emulate-gpus 8)

With --run, finished experiments are skipped and interrupted ones continue (--resume auto), so a
sweep stopped by a failure resumes by running the same command again. An experiment whose folder
holds a run started with other options (another --extra, an edited recipe) is never skipped
silently: the sweep names it and stops, or, with --rerun-changed, trains it again from scratch. See docs/reproduce.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from distkd_cli.args import ArgumentParser
from reproduce import methods
from reproduce.jobs import ONLY_CHOICES, Job
from reproduce.paper import TABLES
from reproduce.sweep import format_plan, plan, run_jobs


def trainer_options(job: Job, cwd: Path) -> dict[str, Any] | None:
    """The options the job's trainer would run with (defaults, its YAML, its command line), or None
    for a command this check does not read (detection: mmengine work dirs)."""
    argv = list(job.argv)
    names = [Path(a).name for a in argv]
    if "dist_train.sh" in names:
        i = names.index("dist_train.sh")
        rest, kind = ["-c", argv[i + 2], "--model", argv[i + 3], *argv[i + 4:]], "classification"
    elif "train.py" in names:
        rest, kind = argv[names.index("train.py") + 1:], "classification"
    elif "train_seg.py" in names:
        rest, kind = argv[names.index("train_seg.py") + 1:], "segmentation"
    else:
        return None
    if "-c" in rest and not Path(rest[rest.index("-c") + 1]).is_absolute():
        rest[rest.index("-c") + 1] = str(Path(cwd) / rest[rest.index("-c") + 1])
    if kind == "classification":
        from classification.config import fill_defaults, parse_args

        return vars(fill_defaults(parse_args(rest)))
    from segmentation.config import parse_args as parse_seg_args

    return vars(parse_seg_args(rest))


def get_args_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", choices=(*TABLES, methods.TABLE),
                        help=f"which table to reproduce ({methods.TABLE}: KD, DKD and DIST, with and without logit "
                             "standardisation, on the paper's six CIFAR-100 pairs)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", dest="run", action="store_false", help="print the commands (default)")
    mode.add_argument("--run", dest="run", action="store_true", help="launch them in order, stop at the first failure")
    parser.set_defaults(run=False)
    parser.add_argument("--seeds", type=int, default=3, help="seeds per student: 0..N-1 (default 3)")
    parser.add_argument("--gpus", type=int, default=None,
                        help="GPUs per run (default: the paper's: 8 for ImageNet, Cityscapes, COCO; 1 for CIFAR; "
                        "0 (CPU) for digits). Fewer than the paper's 8 (1, 2 or 4): the commands emulate its 8 GPUs "
                        "(--emulate-gpus 8; COCO: accumulative_counts), see 'Reproducing on fewer GPUs' in "
                        "docs/reproduce.md")
    parser.add_argument("--output", default="experiments", help="experiments folder (default: experiments)")
    parser.add_argument("--extra", default="",
                        help='options appended to every command, e.g. "--epochs 2" (one bare flag: --extra=--amp)')
    parser.add_argument("--rerun-changed", action="store_true",
                        help="with --run: train again from scratch the experiments whose folder holds a run started "
                             "with other options (without it the sweep lists them and stops)")
    parser.add_argument("--only", action="append", choices=ONLY_CHOICES,
                        help="keep only these runs (repeatable; dist includes COCO's DIST+mimic)")
    parser.add_argument("--recipe", choices=methods.RECIPES, default="paper",
                        help=f"{methods.TABLE}: 'paper' runs every method on the DIST paper's recipe; 'published' "
                             "adds the runs of each method's own published setting where it differs")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    jobs = plan(args.table, seeds=args.seeds, gpus=args.gpus, output=args.output, extra=args.extra, only=args.only,
                recipe=args.recipe)
    if not args.run:
        print(format_plan(jobs))
        return
    sys.exit(run_jobs(jobs, rerun_changed=args.rerun_changed, options_of=trainer_options))

