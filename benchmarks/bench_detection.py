"""COCO detection DIST on the tiny COCO set of the tests: the paper's RetinaNet loss against this
project's per-anchor variant, and one distillation step of each of the four DIST configs.

1. **RetinaNet losses.** One forward of the RetinaNet DIST config (student R50, teacher X101-64x4d,
   weights as built: no checkpoints are loaded) on a batch of the tiny set; on the recorded
   ``retina_cls`` outputs of each FPN level, ``(N, 720, H, W)``: the paper's loss (``KDLoss``,
   ``method='dist_sigmoid'``: 720 sigmoid scores per position) and ``method='dist_anchor'`` (per
   anchor, 81-way softmax with a background logit fixed at 0), each its value and the norm of its gradient
   with respect to the student's output.
2. **Distillation steps.** For each config, ``model.train_step`` (data preprocessing, teacher and
   student forward, losses, backward, SGD update with the config's optimizer): median time over
   ``--repeats`` steps after one warm-up step (``--clock cpu``: CPU time of the process), and the
   peak memory one step allocates (``benchmarks.common.peak_bytes``: weights, optimizer state and
   the batch exist before it).

The configs are the real ones (full-size teachers), pointed at the tiny set (3 images of 128x96,
2 per batch) by ``detection/tiny.py``; needs the OpenMMLab stack (``tools/install_openmmlab.sh``).

    PYTHONPATH=. python benchmarks/bench_detection.py              # CPU, full-size teachers
    PYTHONPATH=. python benchmarks/bench_detection.py --threads 1 --clock cpu   # on a shared machine
    PYTHONPATH=. python benchmarks/bench_detection.py --smoke      # ResNet-18 teachers, 1 repeat
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # the profiler's start-up chatter on stderr
warnings.filterwarnings("ignore")  # mmengine's pkg_resources notice, "teacher keeps random weights"

import torch  # noqa: E402

from distkd_cli.measure import machine_header, peak_bytes  # noqa: E402

MiB = 2**20
CONFIGS = {  # --configs key: (table label, config in configs/detection)
    "frcnn": ("Faster R-CNN DIST", "faster-rcnn_r50_dist_cascade-mask-rcnn_x101_2x_coco.py"),
    "frcnn-mimic": ("Faster R-CNN DIST+mimic", "faster-rcnn_r50_dist-mimic_cascade-mask-rcnn_x101_2x_coco.py"),
    "retina": ("RetinaNet DIST", "retinanet_r50_dist_retinanet_x101_2x_coco.py"),
    "retina-mimic": ("RetinaNet DIST+mimic", "retinanet_r50_dist-mimic_retinanet_x101_2x_coco.py"),
}


def build(name: str, data_root: Path, small_teacher: bool, device: torch.device):
    """The config's algorithm (weights as built, init_weights applied), its optimizer and one batch."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.runner import Runner, set_random_seed

    from detection.tiny import tiny_detection_config

    cfg = tiny_detection_config(name, data_root, small_teacher=small_teacher)
    init_default_scope(cfg.default_scope)
    set_random_seed(0)  # python, numpy (RandomFlip) and torch
    model = MODELS.build(cfg.model)
    # No teacher checkpoint here: give the teacher its config's own init as well (its retina_cls bias
    # prior, for one; tiny.py removed its backbone's ImageNet init_cfg, so nothing is downloaded).
    model.teacher._is_init = False
    model.init_weights()
    model.to(device).train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    batch = next(iter(Runner.build_dataloader(cfg.train_dataloader, seed=0)))
    return model, optim_wrapper, batch


def compare_retina_losses(data_root: Path, small_teacher: bool, device: torch.device) -> list[dict]:
    """Per FPN level: ``{loss: (value, inter-class term, intra-class term, grad norm)}`` of both losses."""
    from detection.losses import KDLoss

    model, _, batch = build(CONFIGS["retina"][1], data_root, small_teacher, device)
    model(**model.data_preprocessor(batch, True), mode="loss")
    losses = {
        "paper": lambda **bg: KDLoss("dist_sigmoid", **bg),
        "per-anchor": lambda **bg: KDLoss("dist_anchor", num_classes=80, **bg),
    }
    rows = []
    for level in range(5):
        z_t = model.distiller.get_record("cls", from_student=False, record_idx=level).detach()
        z_s = model.distiller.get_record("cls", from_student=True, record_idx=level).detach()
        row = {"level": f"P{level + 3}", "shape": "x".join(map(str, z_s.shape))}
        for key, make in losses.items():
            leaf = z_s.clone().requires_grad_()
            value = make()(leaf, z_t)
            (grad,) = torch.autograd.grad(value, leaf)
            inter, intra = make(gamma=0.0)(z_s, z_t), make(beta=0.0)(z_s, z_t)
            row[key] = (float(value), float(inter), float(intra), float(grad.norm()))
        rows.append(row)
    return rows


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_step(name: str, data_root: Path, small_teacher: bool, device: torch.device, repeats: int,
                 clock=time.perf_counter) -> dict:
    model, optim_wrapper, batch = build(name, data_root, small_teacher, device)

    def step() -> None:
        model.train_step(batch, optim_wrapper)

    step()  # warm-up (allocates the SGD momentum buffers)
    times = []
    for _ in range(repeats):
        sync(device)
        start = clock()
        step()
        sync(device)
        times.append((clock() - start) * 1e3)
    student = sum(p.numel() for p in model.student.parameters())
    aligners = sum(p.numel() for p in model.distiller.parameters())
    return {"ms": sorted(times)[len(times) // 2], "MiB": peak_bytes(step, device) / MiB,
            "student_M": student / 1e6, "aligners_M": aligners / 1e6}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3, help="timed steps per config (after one warm-up)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: PyTorch's)")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="cpu: CPU seconds of the process (time.process_time), for shared machines; use --threads 1")
    p.add_argument("--small-teachers", action="store_true", help="ResNet-18 teacher backbones, as the tests")
    p.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated subset of {','.join(CONFIGS)}")
    p.add_argument("--smoke", action="store_true", help="small teachers, 1 repeat, the RetinaNet DIST+mimic step only")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.smoke:
        args.small_teachers, args.repeats, args.configs = True, 1, "retina-mimic"
    configs = args.configs.split(",")
    if not set(configs) <= set(CONFIGS):
        raise SystemExit(f"--configs: unknown {sorted(set(configs) - set(CONFIGS))}; choose from {','.join(CONFIGS)}")
    device = torch.device(args.device)
    if args.clock == "cpu" and device.type != "cpu":
        raise SystemExit("--clock cpu times CPU work only; use --clock wall with --device cuda")
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")

    from detection import compat

    try:
        compat.apply()
        import detection.plugin  # noqa: F401
        from detection.tiny import write_tiny_coco
    except ModuleNotFoundError as err:
        raise SystemExit(f"{err}: this benchmark needs the OpenMMLab stack (sh tools/install_openmmlab.sh)") from None

    from mmengine.logging import MMLogger

    MMLogger.get_instance("bench_detection", log_level="WARNING")  # init_weights' per-parameter report
    print(machine_header(device))
    teachers = "ResNet-18 teacher backbones" if args.small_teachers else "full-size teachers"
    with tempfile.TemporaryDirectory() as tmp:
        data_root = write_tiny_coco(Path(tmp))
        print(f"\nRetinaNet retina_cls outputs of one tiny-COCO batch (2 images 128x96, {teachers}, weights as built)")
        print("loss = inter-class term + intra-class term; grad norm: of the loss w.r.t. the student's output")
        print("| level | output (N, A*C, H, W) | paper (sigmoid, 720 per position): loss = inter + intra | grad norm "
              "| per-anchor (81-way softmax): loss = inter + intra | grad norm |\n|---|---|---|---|---|---|")
        for r in compare_retina_losses(data_root, args.small_teachers, device):
            cells = [f"{v:.4f} = {inter:.4f} + {intra:.4f} | {g:.3e}" for v, inter, intra, g in
                     (r["paper"], r["per-anchor"])]
            print(f"| {r['level']} | {r['shape']} | {cells[0]} | {cells[1]} |")

        print(f"\nOne distillation step (train_step: fwd teacher + student, losses, bwd, SGD), {teachers}, "
              f"median of {args.repeats}, {args.clock} clock")
        print("| config | student params (M) | aligner params (M) | step ms | peak MiB |\n|---|---|---|---|---|")
        for label, name in (CONFIGS[key] for key in configs):
            r = measure_step(name, data_root, args.small_teachers, device, args.repeats, clock)
            print(f"| {label} | {r['student_M']:.1f} | {r['aligners_M']:.2f} | {r['ms']:.0f} | {r['MiB']:.0f} |")


if __name__ == "__main__":
    main()
