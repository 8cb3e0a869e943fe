"""Reading segmentation save dirs and mmengine detection work dirs, and matching them to rows."""
import json
import sys
from pathlib import Path

import pytest
import yaml

from reproduce.matching import build_lines
from reproduce.paper import reference_rows
from reproduce.runs import find_runs, load_run

sys.path.insert(0, str(Path(__file__).parent))
from fake_runs import write_run  # noqa: E402


def write_seg_run(root: Path, name: str, *, student: str, teacher: str | None, mious: list[tuple[int, float]],
                  max_iterations: int = 40000, seed: int = 0, backbone: str = "resnet18") -> Path:
    path = root / name
    path.mkdir(parents=True)
    args = {"student_model": student, "student_backbone": backbone, "teacher_model": teacher,
            "teacher_backbone": "resnet101", "lambda_kd": 1.0, "max_iterations": max_iterations, "seed": seed}
    (path / "args.yaml").write_text(yaml.safe_dump(args))
    rows = "".join(f"{it},{miou}\n" for it, miou in mious)
    (path / "metrics.csv").write_text("iteration,val_miou\n" + rows)
    return path


def write_mmdet_run(root: Path, name: str, config: str, aps: list[float], max_epochs: int = 24, seed: int = 1):
    work_dir = root / name
    vis = work_dir / "20261125_010203" / "vis_data"
    vis.mkdir(parents=True)
    (work_dir / config).write_text(f"train_cfg = dict(type='EpochBasedTrainLoop', max_epochs={max_epochs})\n"
                                   f"randomness = dict(seed={seed})\n")
    records = [{"loss": 1.0, "epoch": 1, "iter": 10, "step": 10}]
    records += [{"coco/bbox_mAP": ap, "coco/bbox_mAP_50": 0.6, "step": epoch} for epoch, ap in enumerate(aps, 1)]
    (vis / "scalars.json").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return work_dir


def test_segmentation_runs(tmp_path):
    dist = load_run(write_seg_run(tmp_path, "d", student="psp", teacher="deeplabv3",
                                  mious=[(4000, 0.60), (40000, 0.7631)]))
    assert (dist.student, dist.teacher, dist.kd, dist.unit) == ("pspnet_resnet18", "deeplabv3_resnet101", "dist",
                                                                "iteration")
    assert dist.finished and dist.best == pytest.approx(76.31) and dist.last == pytest.approx(76.31)
    base = load_run(write_seg_run(tmp_path, "b", student="deeplabv3", teacher=None, mious=[(4000, 0.5)],
                                  backbone="resnet18_v1s"))  # the paper's resnet18
    assert base.student == "deeplabv3_resnet18"
    assert base.kd is None and not base.finished and base.status == "unfinished (4000 of 40000 iterations done)"
    teacher = load_run(write_seg_run(tmp_path, "t", student="deeplabv3", teacher=None, backbone="resnet101",
                                     mious=[(40000, 0.78)]))
    lines = {(line.row.student_model, line.method): line
             for line in build_lines([dist, base, teacher], reference_rows()) if line.runs}
    assert lines[("pspnet_resnet18", "dist")].paper == 76.31
    assert lines[("deeplabv3_resnet18", "baseline")].paper == 74.21
    for student in ("pspnet_resnet18", "deeplabv3_resnet18"):  # the trained teacher serves both rows
        assert lines[(student, "teacher")].best.mean == pytest.approx(78.0)
        assert lines[(student, "teacher")].paper == 78.07


def test_detection_work_dirs(tmp_path):
    write_mmdet_run(tmp_path, "coco-retinar50_retinax101-dist-s1", "retinanet_r50_dist_retinanet_x101_2x_coco.py",
                    aps=[0.30] * 23 + [0.398])
    write_mmdet_run(tmp_path, "crashed", "faster-rcnn_r50_dist-mimic_cascade-mask-rcnn_x101_2x_coco.py",
                    aps=[0.35, 0.36])
    runs, problems = find_runs(tmp_path)
    assert problems == []
    by_name = {run.name: run for run in runs}
    retina = by_name["coco-retinar50_retinax101-dist-s1"]
    assert (retina.student, retina.kd, retina.seed, retina.finished) == ("retinanet_r50_fpn", "dist", 1, True)
    assert retina.best == pytest.approx(39.8)
    crashed = by_name["crashed"]
    assert (crashed.kd, crashed.status) == ("dist_mimic", "unfinished (2 of 24 epochs done)")
    lines = {(line.row.student_model, line.method): line for line in build_lines(runs, reference_rows())
             if line.runs}
    assert lines[("retinanet_r50_fpn", "dist")].best.mean == pytest.approx(39.8)
    assert lines[("retinanet_r50_fpn", "dist")].diff == pytest.approx(0.0)
    assert lines[("faster_rcnn_r50_fpn", "dist_mimic")].paper == 41.8
    teacher = next(line for line in build_lines(runs, reference_rows()) if line.method == "teacher")
    assert teacher.status == "pretrained weights, not evaluated by these runs"


def test_torn_metrics_line_and_missing_metrics(tmp_path):
    torn = load_run(write_run(tmp_path, "torn", model="cifar_resnet8", dataset="digits", epochs=4, top1=[50, 55],
                              torn_line=True))
    assert (torn.done, torn.best, torn.last, torn.finished) == (2, 55, 55, False)
    (tmp_path / "torn" / "metrics.csv").unlink()
    empty = load_run(tmp_path / "torn")
    assert empty.done is None and empty.status == "unfinished (no epoch done)"


def test_model_ema_runs_are_scored_by_the_ema_weights(tmp_path):
    path = write_run(tmp_path, "ema", model="tv_resnet18", dataset="imagenet", epochs=2, top1=[70, 72],
                     config="configs/strategies/distill/dist_b2.yaml")
    args = yaml.safe_load((path / "args.yaml").read_text())
    (path / "args.yaml").write_text(yaml.safe_dump({**args, "model_ema": True}))
    lines = (path / "metrics.csv").read_text().splitlines()
    ema = [lines[0] + ",val_top1_ema"] + [f"{line},{value}" for line, value in zip(lines[1:], (71.0, 73.5))]
    (path / "metrics.csv").write_text("\n".join(ema) + "\n")
    run = load_run(path)
    assert (run.best, run.last, run.recipe) == (73.5, 73.5, "strong")
