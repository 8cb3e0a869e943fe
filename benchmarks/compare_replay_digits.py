"""Same results online and replayed: DIST on digits, 3 seeds each, online teacher vs exact store.

Trains a teacher on scikit-learn's digits, builds its exact store (every crop offset of the
recipe), then trains the student with DIST for each seed twice: with the online teacher and with
``--teacher-store``. Prints the best top-1 of every run and the mean / spread of each mode.

    PYTHONPATH=. python benchmarks/compare_replay_digits.py --out experiments/replay_digits
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from classification.teacher_store.cli import main as build_store_main
from classification.train import main as train_main

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="folder for the runs and the store")
    p.add_argument("--teacher", default="cifar_resnet20")
    p.add_argument("--student", default="cifar_resnet8")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--teacher-epochs", type=int, default=10)
    args = p.parse_args(argv)
    out = Path(args.out)
    base = ["-c", str(ROOT / "configs" / "digits.yaml"), "--device", "cpu", "--output", str(out),
            "--log-interval", "100"]
    teacher_ckpt = out / "teacher" / "best.pth"
    if not teacher_ckpt.is_file():
        train_main(base + ["--model", args.teacher, "--experiment", "teacher", "--epochs", str(args.teacher_epochs),
                           "--overwrite"])
    t_opts = ["--teacher-model", args.teacher, "--teacher-ckpt", str(teacher_ckpt)]
    start = time.time()
    build_store_main(["-c", str(ROOT / "configs" / "digits.yaml"), "--device", "cpu", *t_opts, "--exact",
                      "--out", str(out / "store")])
    build_s = time.time() - start
    kd = ["--model", args.student, "--kd", "dist", "--epochs", str(args.epochs), "--overwrite", *t_opts]
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        for mode, extra in (("online", []), ("store", ["--teacher-store", str(out / "store")])):
            start = time.time()
            stats = train_main(base + kd + ["--seed", str(seed), "--experiment", f"{mode}_s{seed}", *extra])
            rows.append((mode, seed, stats["best_top1"], stats["top1"], time.time() - start))
    print(f"teacher {args.teacher}, student {args.student}, DIST, {args.epochs} epochs, digits at 16 px; "
          f"exact store built in {build_s:.0f}s")
    print("| mode | seed | best top-1 | last top-1 | run s |")
    print("|---|---|---|---|---|")
    for mode, seed, best, last, secs in rows:
        print(f"| {mode} | {seed} | {best:.2f} | {last:.2f} | {secs:.0f} |")
    for mode in ("online", "store"):
        vals = [r[2] for r in rows if r[0] == mode]
        spread = f"{min(vals):.2f}-{max(vals):.2f}"
        print(f"| {mode} mean | | {statistics.mean(vals):.2f} (sd {statistics.pstdev(vals):.2f}, range {spread}) | | |")


if __name__ == "__main__":
    main()
