"""Sweep commands of the dense-prediction tables: Cityscapes segmentation and COCO detection."""
from __future__ import annotations

from collections.abc import Sequence

from distkd.reproduce.job import Job, short_name
from distkd.reproduce.paper import PaperRow

SEG_SCRIPT = "tools/train_seg.py"
SEG_DATA = "data/cityscapes"
SEG_ARCH = {"deeplabv3": "deeplabv3", "pspnet": "psp"}  # paper name -> --student-model/--teacher-model
SEG_CKPTS = "ckpts"  # the paper's backbone files ckpts/resnet{18,101}-imagenet.pth (segmentation/README.md)
# The paper's settings, as the launch scripts in segmentation/train_scripts/ pass them: its input
# format, 16 images, 40k iterations, lr 0.02, float32; the two trainers' own weight decay, poly
# floor and validation interval.
SEG_OPTIONS = ("--input-format", "paper", "--crop-size", "512", "1024", "--batch-size", "16", "--max-iterations",
               "40000", "--lr", "0.02", "--momentum", "0.9", "--power", "0.9", "--aux-weight", "0.4", "--no-amp")
SEG_TRAINER_OPTIONS = {  # the paper's train_kd.py / train_baseline.py
    "dist": ("--weight-decay", "5e-4", "--min-lr", "1e-4", "--val-interval", "400"),
    "baseline": ("--weight-decay", "1e-4", "--min-lr", "0", "--val-interval", "800"),
}
DET_LAUNCHER = "tools/dist_train_mmdet.sh"
# Paper row (student model) -> config of each detection column. The teachers are mmdet's COCO
# weights, read by the distillation configs, so detection has no teacher job.
DET_CONFIGS = {
    "faster_rcnn_r50_fpn": {
        "baseline": "configs/detection/faster-rcnn_r50_fpn_2x_coco.py",
        "dist": "configs/detection/faster-rcnn_r50_dist_cascade-mask-rcnn_x101_2x_coco.py",
        "dist_mimic": "configs/detection/faster-rcnn_r50_dist-mimic_cascade-mask-rcnn_x101_2x_coco.py",
    },
    "retinanet_r50_fpn": {
        "baseline": "configs/detection/retinanet_r50_fpn_2x_coco.py",
        "dist": "configs/detection/retinanet_r50_dist_retinanet_x101_2x_coco.py",
        "dist_mimic": "configs/detection/retinanet_r50_dist-mimic_retinanet_x101_2x_coco.py",
    },
}


def _split(model: str) -> tuple[str, str]:
    """``pspnet_resnet18`` -> (``psp``, ``resnet18``): the trainer's model and the paper's backbone names."""
    arch, _, backbone = model.partition("_")
    return SEG_ARCH.get(arch, arch), backbone


def _seg_backbone(paper_backbone: str) -> str:
    """The paper's resnet18/resnet101 are the deep-stem ``*_v1s`` networks of this code."""
    return f"{paper_backbone}_v1s" if paper_backbone.startswith("resnet") else paper_backbone


def _seg_launch(gpus: int) -> list[str]:
    return ["torchrun", f"--nproc_per_node={gpus}", SEG_SCRIPT] if gpus > 1 else ["python", SEG_SCRIPT]


def _seg_job(row: PaperRow, role: str, seed: int, gpus: int, output: str) -> Job:
    model = row.teacher_model if role == "teacher" else row.student_model
    arch, backbone = _split(model)
    if role == "teacher":
        name = f"cityscapes-{short_name(model)}-teacher-s0"
    elif role == "baseline":
        name = f"cityscapes-{short_name(model)}-baseline-s{seed}"
    else:
        name = f"cityscapes-{short_name(model)}_{short_name(row.teacher_model)}-{role}-s{seed}"
    argv = _seg_launch(gpus) + ["--student-model", arch, "--student-backbone", _seg_backbone(backbone)]
    argv += ["--data", SEG_DATA, "--student-pretrained-base", f"{SEG_CKPTS}/{backbone}-imagenet.pth", *SEG_OPTIONS]
    argv += SEG_TRAINER_OPTIONS["dist" if role == "dist" else "baseline"]
    argv += ["--save-dir", f"{output}/{name}", "--seed", str(seed)]
    models = [model]
    if role == "dist":
        t_arch, t_backbone = _split(row.teacher_model)
        teacher_dir = f"{output}/cityscapes-{short_name(row.teacher_model)}-teacher-s0"
        argv += ["--teacher-model", t_arch, "--teacher-backbone", _seg_backbone(t_backbone)]
        argv += ["--teacher-pretrained", f"{teacher_dir}/best.pth", "--lambda-kd", "1.0", "--eval-teacher"]
        models.append(row.teacher_model)
    return Job(name, role, row, seed, tuple(argv), None, tuple(models), f"{output}/{name}")


def _det_job(row: PaperRow, role: str, seed: int, gpus: int, output: str) -> Job:
    config = DET_CONFIGS[row.student_model][role]
    student = short_name(row.student_model)
    if role == "baseline":
        name = f"coco-{student}-baseline-s{seed}"
    else:
        name = f"coco-{student}_{short_name(row.teacher_model)}-{role}-s{seed}"
    argv = ["sh", DET_LAUNCHER, config, str(max(gpus, 1)), f"{output}/{name}"]
    argv += ["--cfg-options", f"randomness.seed={seed}"]
    return Job(name, role, row, seed, tuple(argv), config, (), f"{output}/{name}")


def dense_jobs(rows: Sequence[PaperRow], seeds: int, gpus: int | None, output: str) -> list[Job]:
    """Segmentation: teacher first, then baseline and DIST students; detection: baseline, DIST, +mimic."""
    gpus = 8 if gpus is None else gpus
    jobs: list[Job] = []
    if rows[0].task == "segmentation":
        jobs += [_seg_job(row, "teacher", 0, gpus, output) for row in rows]
        for seed in range(seeds):
            jobs += [_seg_job(row, role, seed, gpus, output) for row in rows for role in ("baseline", "dist")]
    else:
        for seed in range(seeds):
            for row in rows:
                jobs += [_det_job(row, role, seed, gpus, output) for role in ("baseline", "dist", "dist_mimic")]
    return jobs
