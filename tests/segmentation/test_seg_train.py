"""The trainer end to end on a tiny Cityscapes tree: KD iterations, resume, refusals, 2-process gloo."""
import csv
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from distkd.errors import UserError
from distkd.utils.checkpoint import safe_load
from segmentation import test as seg_test
from segmentation.datasets.cityscapes import TRAIN_ID_TO_LABEL_ID
from segmentation.train import main
from tests.conftest import HANG_GUARD_S
from tests.hooks import hook_env

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--crop-size", "32", "64", "--batch-size", "2", "--workers", "0", "--no-progress", "--log-interval", "1",
        "--val-interval", "100", "--device", "cpu"]  # fmt: skip


def rows(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_kd_iterations_decrease_dist(cityscapes, tmp_path, teacher_ckpt):
    save = tmp_path / "kd"
    main(["--data", str(cityscapes), "--save-dir", str(save), "--max-iterations", "8", *TINY,
          "--teacher-model", "deeplabv3", "--teacher-backbone", "resnet18", "--teacher-pretrained", str(teacher_ckpt),
          "--student-model", "psp", "--student-backbone", "resnet18"])  # fmt: skip
    kd = [float(r["loss_kd"]) for r in rows(save / "train_log.csv")]
    assert len(kd) == 8 and all(v > 0 for v in kd)
    assert sum(kd[-3:]) / 3 < 0.9 * sum(kd[:3]) / 3, kd
    metrics = rows(save / "metrics.csv")
    assert [r["iteration"] for r in metrics] == ["8"] and 0 <= float(metrics[0]["val_miou"]) <= 1
    ious = [v for k, v in metrics[0].items() if k.startswith("iou_")]
    assert len(ious) == 19 and all(v == "" or 0 <= float(v) <= 1 for v in ious)  # "": class absent
    assert list((save / "tb").glob("events.out.tfevents.*"))
    for name in ("args.yaml", "last.pth", "best.pth", "log.txt"):
        assert (save / name).is_file()
    log = (save / "log.txt").read_text()
    assert re.search(r"iteration 7/8 lr \S+ loss .* \| [\d,]+ img/s, run 0:\d\d:\d\d left", log), log
    state = safe_load(save / "last.pth")
    assert state["position"]["iteration"] == 8 and not any(k.startswith("teacher") for k in state["model"])

    # the checkpoint evaluates with tools/test_seg.py and writes palette PNGs holding label ids
    out = seg_test.main(["--model", "psp", "--backbone", "resnet18", "--checkpoint", str(save / "best.pth"),
                         "--data", str(cityscapes), "--workers", "0", "--device", "cpu", "--save-pred",
                         str(tmp_path / "pred"), "--scales", "0.5", "1.0", "--flip"])  # fmt: skip
    assert 0 <= out["miou"] <= 1 and len(out["iou"]) == 19
    from PIL import Image

    pngs = sorted((tmp_path / "pred").glob("*.png"))
    assert len(pngs) == 2
    image = Image.open(pngs[0])
    assert image.mode == "P" and image.size == (128, 64)
    values = set(torch.tensor(list(image.get_flattened_data())).unique().tolist())
    assert values <= set(TRAIN_ID_TO_LABEL_ID)  # official label ids, as the test server reads them


def test_resume_continues_at_the_right_iteration(cityscapes, tmp_path):
    common = ["--data", str(cityscapes), "--max-iterations", "4", *TINY, "--student-model", "deeplabv3"]
    main([*common, "--save-dir", str(tmp_path / "full")])
    main([*common, "--save-dir", str(tmp_path / "split"), "--stop-iteration", "2"])
    half = safe_load(tmp_path / "split" / "last.pth")
    assert half["position"]["iteration"] == 2
    main([*common, "--save-dir", str(tmp_path / "split"), "--resume"])
    full, split = safe_load(tmp_path / "full" / "last.pth"), safe_load(tmp_path / "split" / "last.pth")
    assert split["position"]["iteration"] == 4
    assert [r["iteration"] for r in rows(tmp_path / "split" / "train_log.csv")] == ["1", "2", "3", "4"]
    for key, value in full["model"].items():
        torch.testing.assert_close(split["model"][key], value, msg=key)
    momentum_full = [s["momentum_buffer"] for s in full["optimizer"]["state"].values()]
    momentum_split = [s["momentum_buffer"] for s in split["optimizer"]["state"].values()]
    for a, b in zip(momentum_full, momentum_split):
        torch.testing.assert_close(a, b)
    assert len(momentum_full) == len(momentum_split) > 0


def test_refusals_are_one_line_errors(cityscapes, tmp_path, teacher_ckpt):
    common = ["--data", str(cityscapes), "--max-iterations", "1", *TINY]
    # the documented names, and --resume on a fresh experiment starts it (as the classification trainer)
    main(["--data-path", str(cityscapes), "--max-iterations", "1", *TINY, "--output", str(tmp_path),
          "--experiment", "run", "--resume"])  # fmt: skip
    assert safe_load(tmp_path / "run" / "last.pth")["position"] == {"iteration": 1}
    assert (tmp_path / "run" / "curves.png").is_file() and (tmp_path / "run" / "tb").is_dir()
    with pytest.raises(UserError, match="--resume"):
        main([*common, "--save-dir", str(tmp_path / "run")])
    with pytest.raises(UserError, match="--teacher-ckpt"):
        main([*common, "--save-dir", str(tmp_path / "kd"), "--teacher-model", "deeplabv3"])
    with pytest.raises(UserError, match="missing keys"):  # deeplabv3 weights for a psp teacher
        main([*common, "--save-dir", str(tmp_path / "kd"), "--teacher-model", "psp", "--teacher-backbone",
              "resnet18", "--teacher-pretrained", str(teacher_ckpt)])  # fmt: skip


@pytest.mark.slow
def test_two_process_gloo_run(cityscapes, tmp_path, teacher_ckpt):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(ROOT / "tools" / "train_seg.py"), "--data", str(cityscapes), "--save-dir", str(tmp_path / "ddp"),
           "--max-iterations", "2", *TINY, "--batch-size", "4", "--teacher-model", "deeplabv3",
           "--teacher-backbone", "resnet18", "--teacher-pretrained", str(teacher_ckpt)]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        _, stderr = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher and both workers
        proc.communicate()
        raise
    assert proc.returncode == 0, stderr[-3000:]
    assert [r["iteration"] for r in rows(tmp_path / "ddp" / "metrics.csv")] == ["2"]
    assert safe_load(tmp_path / "ddp" / "last.pth")["position"]["iteration"] == 2


@pytest.mark.slow
def test_sigterm_saves_exits_75_and_the_run_resumes_exactly(cityscapes, tmp_path):
    from distkd.utils.preemption import PREEMPTED_EXIT_CODE

    common = ["--data", str(cityscapes), "--max-iterations", "5", *TINY, "--student-model", "deeplabv3"]
    main([*common, "--save-dir", str(tmp_path / "full")])
    pause = tmp_path / "pause"
    pause.write_text("")
    env = dict(os.environ, OMP_NUM_THREADS="1", DISTKD_TEST_PAUSE_AT="0:2", DISTKD_TEST_PAUSE_FILE=str(pause),
               **hook_env())
    cmd = [sys.executable, str(ROOT / "tools" / "train_seg.py"), *common, "--save-dir", str(tmp_path / "split")]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while not Path(f"{pause}.reached").exists():  # waits at iteration 2: the signal cannot race
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=HANG_GUARD_S) == PREEMPTED_EXIT_CODE
    assert "pre-empted: SIGTERM received" in proc.stderr.read()
    assert safe_load(tmp_path / "split" / "last.pth")["position"]["iteration"] == 2
    main([*common, "--save-dir", str(tmp_path / "split"), "--resume"])
    full, split = safe_load(tmp_path / "full" / "last.pth"), safe_load(tmp_path / "split" / "last.pth")
    for key, value in full["model"].items():
        torch.testing.assert_close(split["model"][key], value, msg=key)


def test_non_finite_loss_stops_naming_the_iteration_and_keeps_the_last_good_checkpoint(cityscapes, tmp_path):
    save = tmp_path / "nan"
    args = ["--data", str(cityscapes), "--save-dir", str(save), "--max-iterations", "4", *TINY,
            "--log-interval", "3", "--save-interval", "1", "--lr", "1e30", "--student-backbone", "resnet18"]
    with pytest.raises(UserError, match=r"non-finite loss at iteration 2 \(loss_ori=(nan|inf)"):
        main(args)  # iteration 2 is no logging point: the device flag names it at the next save
    assert safe_load(save / "last.pth")["position"]["iteration"] == 1


def test_amp_dtype_float16_is_cuda_only_and_bfloat16_runs_on_cpu(cityscapes, tmp_path):
    common = ["--data", str(cityscapes), "--max-iterations", "1", *TINY, "--student-backbone", "resnet18", "--amp"]
    main([*common, "--save-dir", str(tmp_path / "fp16")])  # the default --amp-dtype float16: float32 on CPU
    log = (tmp_path / "fp16" / "log.txt").read_text()
    assert "--amp --amp-dtype float16 needs CUDA; training in float32 on cpu" in log and "iterations, float32" in log
    assert "scaler" not in safe_load(tmp_path / "fp16" / "last.pth")  # a GradScaler for float16 on CUDA only
    main([*common, "--amp-dtype", "bfloat16", "--save-dir", str(tmp_path / "bf16")])
    assert "iterations, AMP bfloat16" in (tmp_path / "bf16" / "log.txt").read_text()
