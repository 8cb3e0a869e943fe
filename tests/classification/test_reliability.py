"""Bad input: one clear line, exit code 2, no traceback, nothing written; crashes lose nothing."""
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

from classification.models import build_model
from classification.train import main
from distkd_cli.run import run_cli
from tests.conftest import HANG_GUARD_S, ROOT
from tests.hooks import hook_env

CONFIG = str(ROOT / "configs" / "digits.yaml")
QUICK = ["-c", CONFIG, "--device", "cpu", "--max-iters-per-epoch", "2", "--image-size", "16", "-b", "16",
         "--epochs", "1", "--model", "cifar_resnet8"]


class Payload:
    def __reduce__(self):
        return (os.getcwd, ())


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("inputs")
    torch.save({"model": build_model("cifar_resnet14", 10).state_dict()}, root / "teacher14.pth")
    torch.save({"model": build_model("cifar_resnet14", 100).state_dict()}, root / "teacher14_c100.pth")
    torch.save({"model": {"w": torch.zeros(1)}, "code": Payload()}, root / "evil.pth")
    (root / "notckpt.pth").write_text("hello")
    (root / "badyaml.yaml").write_text("lr: 0.1\nepochs: [1\n")
    (root / "typo.yaml").write_text("lerning_rate: 0.1\n")
    (root / "imagenet_wrong").mkdir()
    (root / "imagenet_wrong" / "images").mkdir()
    ro = root / "readonly"
    ro.mkdir()
    ro.chmod(0o500)
    return {k: str(root / v) for k, v in {"t14": "teacher14.pth", "t14_100": "teacher14_c100.pth",
                                           "evil": "evil.pth", "notckpt": "notckpt.pth", "badyaml": "badyaml.yaml",
                                           "typo": "typo.yaml", "wrong": "imagenet_wrong", "ro": "readonly",
                                           "root": "."}.items()}


KD = ["--kd", "dist", "--teacher-model", "cifar_resnet14"]
CASES = {
    "missing data path": (["--dataset", "imagenet", "--data-path", "/nonexistent/imagenet"], "does not exist"),
    "wrong dataset layout": (["--dataset", "imagenet", "--data-path", "{wrong}"], "ImageNet val split not found"),
    "cifar without pickles": (["--dataset", "cifar100", "--data-path", "{wrong}"], "cifar-100-python/test"),
    "unknown model": (["--model", "resnet8"], "unknown model 'resnet8'"),
    "unknown teacher model": (["--kd", "dist", "--teacher-model", "cifar_resnet99"], "Did you mean"),
    "unknown kd method": (["--kd", "dits", "--teacher-model", "cifar_resnet14"], "unknown --kd method 'dits'"),
    "kd without teacher": (["--kd", "dist"], "needs a teacher"),
    "teacher without kd": (["--teacher-model", "cifar_resnet14"], "without --kd"),
    "unknown yaml key": (["-c", "{typo}"], "unknown key 'lerning_rate'"),
    "yaml syntax error": (["-c", "{badyaml}"], r"YAML syntax error .* line \d+, column \d+"),
    "missing config": (["-c", "/nonexistent.yaml"], "config file not found"),
    "teacher checkpoint missing": (KD + ["--teacher-ckpt", "/nonexistent/t.pth"], "teacher checkpoint not found"),
    "teacher of another architecture": (KD[:-1] + ["cifar_resnet20", "--teacher-ckpt", "{t14}"], "missing keys"),
    "teacher with other num_classes": (
        KD + ["--teacher-ckpt", "{t14_100}"], r"fc.weight \(100, 64\) vs model \(10, 64\)"),
    "teacher checkpoint with pickled code": (KD + ["--teacher-ckpt", "{evil}"], "was refused"),
    "teacher file not a checkpoint": (KD + ["--teacher-ckpt", "{notckpt}"], "not a (readable )?PyTorch checkpoint"),
    "resume file not a checkpoint": (["--resume", "{notckpt}"], "not a (readable )?PyTorch checkpoint"),
    "resume file is weights only": (["--resume", "{t14}"], "not a training checkpoint"),
    "resume file missing": (["--resume", "/nonexistent/last.pth"], "resume checkpoint not found"),
    "batch larger than dataset": (["-b", "5000"], "batch size 5000 .* larger than the 1437"),
    "gpu without gpu": (["--device", "cuda"], "no CUDA GPU is visible"),
    "zero temperature": (KD[:1] + ["dist_t0"] + KD[2:] + ["--teacher-ckpt", "{t14}"], "tau must be > 0"),
    "negative temperature": (KD + ["--teacher-ckpt", "{t14}", "--kd-loss-kwargs", "tau=-1"], "must be > 0"),
    "bad kd kwargs": (KD + ["--teacher-ckpt", "{t14}", "--kd-loss-kwargs", "alpha=1"], "bad --kd-loss-kwargs"),
    "zero epochs": (["--epochs", "0"], "--epochs must be positive"),
    "zero accumulation steps": (["--grad-accum-steps", "0"], "--grad-accum-steps must be a positive integer, got 0"),
    "negative accumulation steps": (["--grad-accum-steps", "-2"], "--grad-accum-steps must be a positive integer"),
    "zero emulated gpus": (["--emulate-gpus", "0"], "--emulate-gpus must be a positive integer, got 0"),
    "accumulation options that disagree": (
        ["--grad-accum-steps", "2", "--emulate-gpus", "8"], "--grad-accum-steps 2 and --emulate-gpus 8 disagree: "
        "8 GPUs on 1 process.* take 8 accumulation steps"),
    "emulated gpus with the teacher store": (["--emulate-gpus", "8", "--teacher-store", "{root}"],
                                             "--emulate-gpus cannot be combined with --teacher-store"),
    "emulated gpus leave no batch": (["--emulate-gpus", "128", "-b", "16"], "batch size 16 .* larger than the 11 "
                                     "training images each of the 128 \\(emulated\\) GPUs gets"),
    "non-writable experiment folder": (["--output", "{ro}/sub"], "not a writable folder"),
    "experiment folder under a file": (["--output", "{notckpt}/sub"], "not a writable folder"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_clear_line_and_writes_nothing(case, files, tmp_path, capsys):
    extra, pattern = CASES[case]
    if case == "non-writable experiment folder" and os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    argv = QUICK + ["--output", str(tmp_path / "out"), "--experiment", "e"] + [a.format(**files) for a in extra]
    with pytest.raises(SystemExit) as exit_info:
        run_cli(lambda: main(argv))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in err, err
    assert re.search(pattern, err), err
    assert not (tmp_path / "out").exists()  # nothing written


def run_quick(tmp_path: Path, *extra: str) -> None:
    main(QUICK + ["--output", str(tmp_path), "--experiment", "e", *extra])


def test_disk_full_during_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch, capsys):
    run_quick(tmp_path, "--epochs", "2", "--stop-after-epochs", "1")

    def no_space(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("distkd.utils.checkpoint.os.fsync", no_space)
    with pytest.raises(SystemExit):
        run_cli(lambda: run_quick(tmp_path, "--epochs", "2", "--resume", "auto"))
    assert "No space left on device" in capsys.readouterr().err
    monkeypatch.undo()
    assert torch.load(tmp_path / "e" / "last.pth", weights_only=True)["position"] == {"epoch": 1, "iteration": 0}
    assert not list((tmp_path / "e").glob(".*.tmp"))


def test_non_finite_loss_stops_naming_the_iteration_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    run_quick(tmp_path, "--epochs", "2", "--stop-after-epochs", "1")
    with pytest.raises(SystemExit):
        run_cli(lambda: run_quick(tmp_path, "--epochs", "2", "--resume", "auto", "--lr", "1e30",
                                  "--warmup-epochs", "0"))
    assert re.search(r"non-finite loss at epoch 1 iteration \d", capsys.readouterr().err)
    assert torch.load(tmp_path / "e" / "last.pth", weights_only=True)["position"] == {"epoch": 1, "iteration": 0}


def test_memory_does_not_grow_across_epochs(tmp_path):
    run_quick(tmp_path, "--epochs", "8", "--max-iters-per-epoch", "4")
    rows = list(csv.DictReader(open(tmp_path / "e" / "metrics.csv")))
    rss = [float(r["rss_mb"]) for r in rows]
    assert max(rss[2:]) - rss[2] < 25, rss  # after warm-up epochs: flat within 25 MB


def _spawn(tmp_path: Path, name: str, *extra: str, pause_at: str | None = None) -> subprocess.Popen:
    """The trainer in a subprocess; ``pause_at='EPOCH:ITER'`` makes it wait there while
    ``tmp_path/name.pause`` exists (the test's callback, tests/hooks.py)."""
    cmd = [sys.executable, str(ROOT / "tools/train.py"), *QUICK, "--output", str(tmp_path), "--experiment", name,
           "--deterministic", "--max-iters-per-epoch", "8", "--epochs", "3", *extra]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if pause_at:
        pause = tmp_path / f"{name}.pause"
        pause.write_text("")
        env.update(DISTKD_TEST_PAUSE_AT=pause_at, DISTKD_TEST_PAUSE_FILE=str(pause), **hook_env())
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=ctrl_c_default)


def ctrl_c_default() -> None:
    """Ctrl-C (SIGINT) at its default in the child, as in a terminal. A shell without job control
    starts a background command (``pytest ... &``) with SIGINT ignored, its children inherit that and
    Python then installs no KeyboardInterrupt handler: the Ctrl-C test would wait forever."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_paused(tmp_path: Path, name: str, proc: subprocess.Popen, timeout: float = HANG_GUARD_S) -> None:
    """Return once the run waits at its pause point (no sleep guesses: signals cannot race)."""
    reached = tmp_path / f"{name}.pause.reached"
    end = time.time() + timeout
    while not reached.exists():
        if proc.poll() is not None or time.time() > end:
            raise AssertionError(f"run did not reach its pause point: {proc.stderr.read() if proc.poll() else ''}")
        time.sleep(0.02)


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = (torch.load(p, weights_only=True)["model"] for p in (a, b))
    return wa.keys() == wb.keys() and all(torch.equal(v, wb[k]) for k, v in wa.items())


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path):
    straight = _spawn(tmp_path, "straight")
    killed = _spawn(tmp_path, "killed", pause_at="1:2")
    wait_paused(tmp_path, "killed", killed)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert torch.load(tmp_path / "killed" / "last.pth", weights_only=True)["position"]["epoch"] == 1  # intact
    resumed = _spawn(tmp_path, "killed", "--resume", "auto")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    assert straight.wait(timeout=300) == 0, straight.stderr.read()
    assert same_weights(tmp_path / "straight" / "last.pth", tmp_path / "killed" / "last.pth")
    rows_a = list(csv.DictReader(open(tmp_path / "straight" / "metrics.csv")))
    rows_b = list(csv.DictReader(open(tmp_path / "killed" / "metrics.csv")))
    assert [r["val_top1"] for r in rows_a] == [r["val_top1"] for r in rows_b]


def children(pid: int) -> list[int]:
    """The processes ``pid`` started (its data-loader workers)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def gone(pid: int) -> bool:
    """``pid`` has exited and been reaped (a zombie counts as still there)."""
    try:
        Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return False


@pytest.mark.slow
def test_ctrl_c_stops_workers_cleanly_and_the_run_resumes(tmp_path):
    proc = _spawn(tmp_path, "int", "-j", "2", pause_at="1:3")
    wait_paused(tmp_path, "int", proc)
    workers = children(proc.pid)
    assert len(workers) >= 2
    proc.send_signal(signal.SIGINT)
    # No time limit here: the exit runs the atexit handlers (log files, data-loader workers) and leaves
    # without the interpreter's teardown (distkd_cli.run), bounded by a watchdog tested below.
    assert proc.wait(timeout=HANG_GUARD_S) == 130
    assert proc.stderr.read().strip().splitlines()[-1].startswith("interrupted: the last completed checkpoint")
    assert [pid for pid in workers if not gone(pid)] == [], "data-loader workers outlived the run"
    resumed = _spawn(tmp_path, "int", "-j", "2", "--resume", "auto")
    assert resumed.wait(timeout=HANG_GUARD_S) == 0, resumed.stderr.read()
    assert torch.load(tmp_path / "int" / "last.pth", weights_only=True)["position"]["epoch"] == 3


HANGING_EXIT = """
import atexit, sys, threading, time
sys.path.insert(0, sys.argv[1])
import distkd_cli.run as cli
cli.EXIT_DEADLINE_S = 0.5
atexit.register(lambda: threading.Event().wait())  # an exit handler that never returns
def main():
    raise KeyboardInterrupt
cli.run_cli(main, fast_exit=True)
"""


def test_the_exit_after_ctrl_c_is_bounded_even_when_an_exit_handler_hangs(tmp_path):
    proc = subprocess.run([sys.executable, "-c", HANGING_EXIT, str(ROOT)], capture_output=True, text=True,
                          timeout=HANG_GUARD_S)
    assert proc.returncode == 130 and proc.stderr.startswith("interrupted:"), proc.stderr


def test_fast_exit_skips_the_teardown_but_runs_the_exit_handlers(monkeypatch, capsys):
    import distkd_cli.run as cli

    ran, codes = [], []
    monkeypatch.setattr(cli.atexit, "_run_exitfuncs", lambda: ran.append(True))
    monkeypatch.setattr(cli.os, "_exit", codes.append)
    monkeypatch.setattr(cli.signal, "signal", lambda *a: None)

    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(SystemExit):  # the stand-in os._exit returns; run_cli then falls through to sys.exit
        cli.run_cli(interrupted, fast_exit=True)
    assert ran == [True] and codes == [130]
    assert capsys.readouterr().err.startswith("interrupted:")
