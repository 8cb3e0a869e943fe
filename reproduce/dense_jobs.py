"""The commands of the dense tables: Cityscapes segmentation (``tools/train_seg.py``: the teacher
first, then baseline and DIST students) and COCO detection (``tools/dist_train_mmdet.sh``: baseline,
DIST and DIST+mimic students; the teachers are mmdet's COCO weights, read by the distillation
configs, so detection has no teacher job).
"""
from __future__ import annotations

from collections.abc import Sequence

from reproduce.jobs import Job, emulate_option, per_gpu_note, short_name
from reproduce.paper import DET_CONFIGS, PaperRow

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
PAPER_DENSE_GPUS = 8  # Cityscapes: 8 GPUs x 2 crops; COCO: 8 GPUs x 2 images


def _split(model: str) -> tuple[str, str]:
    """``pspnet_resnet18`` -> (``psp``, ``resnet18``): the trainer's model and the paper's backbone names."""
    arch, _, backbone = model.partition("_")
    return SEG_ARCH.get(arch, arch), backbone


def _seg_backbone(paper_backbone: str) -> str:
    """The paper's resnet18/resnet101 are the deep-stem ``*_v1s`` networks of this code."""
    return f"{paper_backbone}_v1s" if paper_backbone.startswith("resnet") else paper_backbone


def _seg_launch(gpus: int) -> list[str]:
    return ["sh", "tools/torchrun.sh", str(gpus), SEG_SCRIPT] if gpus > 1 else ["python", SEG_SCRIPT]


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
    argv += ["--data-path", SEG_DATA, "--student-pretrained-base", f"{SEG_CKPTS}/{backbone}-imagenet.pth", *SEG_OPTIONS]
    argv += SEG_TRAINER_OPTIONS["dist" if role == "dist" else "baseline"]
    argv += ["--output", output, "--experiment", name, "--seed", str(seed), *emulate_option(gpus, PAPER_DENSE_GPUS)]
    models = [model]
    if role == "dist":
        t_arch, t_backbone = _split(row.teacher_model)
        teacher_dir = f"{output}/cityscapes-{short_name(row.teacher_model)}-teacher-s0"
        argv += ["--teacher-model", t_arch, "--teacher-backbone", _seg_backbone(t_backbone)]
        argv += ["--teacher-ckpt", f"{teacher_dir}/best.pth", "--kd-loss-weight", "1.0", "--eval-teacher"]
        models.append(row.teacher_model)
    note = per_gpu_note(gpus, PAPER_DENSE_GPUS, 2, "crops")
    if max(gpus, 1) < PAPER_DENSE_GPUS:
        note += "; BatchNorm over all 16 crops (as SyncBatchNorm), DIST and cross-entropy per 2 crops"
    return Job(name, role, row, seed, tuple(argv), None, tuple(models), f"{output}/{name}", per_gpu=note)


def _det_job(row: PaperRow, role: str, seed: int, gpus: int, output: str) -> Job:
    config = DET_CONFIGS[row.student_model][role]
    student = short_name(row.student_model)
    if role == "baseline":
        name = f"coco-{student}-baseline-s{seed}"
    else:
        name = f"coco-{student}_{short_name(row.teacher_model)}-{role}-s{seed}"
    argv = ["sh", DET_LAUNCHER, config, str(max(gpus, 1)), f"{output}/{name}"]
    argv += ["--cfg-options", f"randomness.seed={seed}"]
    used = max(gpus, 1)
    note = f"per GPU 2 images: {used} GPU(s) x 2 per step" + (" (the paper's)" if used == PAPER_DENSE_GPUS else "")
    if used < PAPER_DENSE_GPUS:
        note = (f"per GPU 2 images: {used} GPU(s) x 2 x {PAPER_DENSE_GPUS // used} accumulated iterations "
                f"(accumulative_counts, set by {DET_LAUNCHER}) = the paper's 8 x 2 per step")
    return Job(name, role, row, seed, tuple(argv), config, (), f"{output}/{name}", per_gpu=note)


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
