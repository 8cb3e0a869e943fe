"""The bundled COCO configs on fewer than the paper's 8 GPUs: 2 images per GPU, 8 / G iterations
accumulated per optimizer step (mmengine's ``accumulative_counts``), set by ``tools/dist_train_mmdet.sh``
from G; and, on the tiny COCO set, one accumulated step in 1 process against one step of 2 gloo
processes."""
from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
import torch

pytest.importorskip("mmcv._ext", reason="OpenMMLab stack not installed: sh tools/install_openmmlab.sh")
pytest.importorskip("mmdet")
pytest.importorskip("mmrazor")
pytestmark = [pytest.mark.openmmlab, pytest.mark.filterwarnings("ignore:pkg_resources is deprecated")]

import detection.train as train_mmdet  # noqa: E402
from detection.tiny import DET_CONFIGS, tiny_detection_config  # noqa: E402
from distkd.errors import UserError  # noqa: E402
from tests.conftest import ROOT  # noqa: E402

CONFIGS = sorted(p.name for p in DET_CONFIGS.glob("*.py"))


@pytest.mark.parametrize("gpus", [1, 2, 4, 8])
@pytest.mark.parametrize("name", ["faster-rcnn_r50_dist_cascade-mask-rcnn_x101_2x_coco.py",
                                  "retinanet_r50_fpn_2x_coco.py"])
def test_the_resolved_config_accumulates_eight_over_g(name, gpus, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", str(gpus))
    cfg = train_mmdet.build_config(train_mmdet.parse_args([str(DET_CONFIGS / name), "--emulate-gpus", "8"]))
    assert cfg.train_dataloader.batch_size == 2  # images per GPU: the paper's
    assert cfg.optim_wrapper.get("accumulative_counts", 1) == 8 // gpus
    warmup = next(s for s in cfg.param_scheduler if s.type == "LinearLR")
    assert (warmup.by_epoch, warmup.end) == (False, 500 * 8 // gpus)  # 500 optimizer steps, as the paper's
    steps = next(s for s in cfg.param_scheduler if s.type == "MultiStepLR")
    assert (steps.by_epoch, steps.milestones, cfg.train_cfg.max_epochs) == (True, [16, 22], 24)


def test_a_process_count_that_does_not_divide_is_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(UserError, match=r"^--emulate-gpus 8 needs a number of processes that divides it "
                                        r"\(1, 2, 4, 8\); this run has 3$"):
        train_mmdet.build_config(train_mmdet.parse_args([str(DET_CONFIGS / CONFIGS[0]), "--emulate-gpus", "8"]))


def launch(tmp_path, config: str, gpus: str, nnodes: str = "1") -> subprocess.CompletedProcess:
    """``dist_train_mmdet.sh`` with a stand-in ``python`` that prints the command it would run."""
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    (fake / "python").write_text('#!/bin/sh\necho "$@"\n')
    (fake / "python").chmod((fake / "python").stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "NNODES": nnodes}
    return subprocess.run(["sh", str(ROOT / "tools/dist_train_mmdet.sh"), config, gpus, str(tmp_path / "w")],
                          capture_output=True, text=True, env=env, cwd=ROOT)


def test_the_launcher_sets_the_accumulation_from_the_gpu_count(tmp_path):
    config = "configs/detection/retinanet_r50_fpn_2x_coco.py"
    for gpus, nnodes, emulated in (("1", "1", True), ("2", "1", True), ("4", "1", True), ("2", "2", True),
                                   ("8", "1", False), ("4", "2", False)):
        result = launch(tmp_path, config, gpus, nnodes)
        assert result.returncode == 0, result.stderr
        assert ("--emulate-gpus 8" in result.stdout) == emulated, (gpus, nnodes, result.stdout)
    other = tmp_path / "mine.py"
    other.write_text("")
    assert "--emulate-gpus" not in launch(tmp_path, str(other), "2").stdout  # not a bundled COCO config
    for gpus, nnodes in (("3", "1"), ("16", "1"), ("3", "2")):
        result = launch(tmp_path, config, gpus, nnodes)
        assert result.returncode == 2 and result.stdout == "", (gpus, nnodes)
        assert len(result.stderr.strip().splitlines()) == 1
        assert result.stderr.startswith("error: retinanet_r50_fpn_2x_coco.py is the paper's 8-GPU x 2-image recipe: "
                                        "run it on 1, 2, 4 or 8 GPUs in all")


@pytest.mark.slow
def test_one_accumulated_step_in_one_process_equals_one_step_of_two(tiny_coco, tmp_path):
    """RetinaNet DIST on the tiny set, 1 image per GPU, no flip (its draw would differ between a
    second process and a second iteration), no shuffling: 2 gloo processes x 1 iteration against 1
    process x 2 accumulated iterations (``--emulate-gpus 2``)."""
    cfg = tiny_detection_config("retinanet_r50_dist_retinanet_x101_2x_coco.py", tiny_coco)
    for key in ("val_dataloader", "val_cfg", "val_evaluator"):
        cfg[key] = None
    cfg.train_dataloader.batch_size = 1
    cfg.train_dataloader.sampler = dict(type="InfiniteSampler", shuffle=False)
    cfg.train_dataloader.dataset.pipeline = [s for s in cfg.train_dataloader.dataset.pipeline
                                             if s.type != "RandomFlip"]
    cfg.train_cfg = dict(type="IterBasedTrainLoop", max_iters=1, val_interval=1000)
    cfg.default_hooks.checkpoint = dict(type="CheckpointHook", interval=1, by_epoch=False)
    config = tmp_path / "tiny_retina_dist.py"
    cfg.dump(str(config))
    env = {**os.environ, "PORT": str(29700 + os.getpid() % 200), "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT)}
    runs = {"two": ["sh", str(ROOT / "tools/dist_train_mmdet.sh"), str(config), "2", str(tmp_path / "two")],
            "one": [sys.executable, str(ROOT / "tools/train_mmdet.py"), str(config), "--work-dir",
                    str(tmp_path / "one"), "--emulate-gpus", "2"]}
    for name, cmd in runs.items():
        result = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=900)
        assert result.returncode == 0, (name, (result.stdout + result.stderr)[-3000:])
    two, one = (torch.load(tmp_path / name / "student_final.pth", map_location="cpu", weights_only=False)
                for name in ("two", "one"))
    two, one = (c.get("state_dict", c) for c in (two, one))
    assert two.keys() == one.keys()
    worst = {k: ((v.float() - one[k].float()).abs().max() / v.float().abs().max().clamp_min(1e-12)).item()
             for k, v in two.items() if v.is_floating_point()}
    assert max(worst.values()) < 1e-5, sorted(worst.items(), key=lambda kv: -kv[1])[:3]
