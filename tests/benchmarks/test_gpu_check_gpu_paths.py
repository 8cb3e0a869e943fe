"""benchmarks/gpu_check.py's GPU run, its Python logic on the CPU: each step's command as the GPU run
builds it (no dry-run branch), with the benchmarks' output stood in for, so that a branch only the
GPU run takes (xdist, --amp, 16 workers, the compiled step cut to one pair when time runs short,
the GPU-sized data) fails here rather than on the lent machine."""
from __future__ import annotations

import dataclasses

from benchmarks import gpu_check
from classification.config import parse_args

STEP_TABLE = """| student : teacher | batch | (a) student step ms | (b) teacher fwd ms | (c) KD step ms | c / (a+b) \
| (c) img/s |
|---|---|---|---|---|---|---|
| tv_resnet18:tv_resnet34 (dist) | 256x224px | 60 | 30 | 91 | 1.011 | 2813.2 |
| tv_resnet18:tv_resnet34 (kd) | 256x224px | 60 | 30 | 90 | 1.000 | 2844.4 |
| student : teacher | KD step dist / kd |
|---|---|
| tv_resnet18:tv_resnet34 | 1.011 |"""
OUTPUT = {
    "env": "| python | 3.12.3 |\n| GPU | NVIDIA H100 80GB HBM3, 79.2 GiB, 132 SMs, sm_90 |\n| pytest-xdist | yes |\n",
    "tests": "12 passed in 30.1s\n", "step": STEP_TABLE, "compile": STEP_TABLE,
    "seg": "DeepLabV3 resnet18 <- DeepLabV3 resnet101\n| | time ms | peak MiB |\n|---|---|---|\n"
           "| KD step (fwd + bwd + SGD) | 300.0 | 20000.0 |\n",
    "data": "| workers | pipeline | img/s (wall) | CPU ms / img | bytes / batch | pinned | batch |\n"
            "|---|---|---|---|---|---|---|\n"
            "| 16 | uint8 | 4000.0 |  | 36.75 MiB | True | 256x3x224x224 |\n",
}


class Recorded(gpu_check.Check):
    """The GPU run's check, its commands recorded and answered with :data:`OUTPUT`."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.commands: dict[str, list[str]] = {}

    def run(self, name, argv, limit, fresh=False):
        assert limit > 0
        self.commands[name] = argv
        if name in ("e2e_kd", "plain", "store_kd"):
            folder = self.work / "runs" / name
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "metrics.csv").write_text("epoch,epoch_time\n0,40.0\n1,20.0\n")
        return OUTPUT.get(name, "")

    def data_root(self, iterations=None):  # no 1024 JPEGs of 500x375 here
        return self.work / f"jpegs_{iterations or self.s.e2e_iters}"


def test_the_gpu_run_builds_every_command_and_reads_its_output(tmp_path):
    sizes = dataclasses.replace(gpu_check.GPU, limits=dict(gpu_check.GPU.limits))
    check = Recorded(tmp_path, tmp_path, sizes, dry_run=False)
    check.step("env", check.env_step)
    for name in ("tests", "step", "seg", "e2e", "data", "store"):
        check.step(name, getattr(check, {"step": "step_bench"}.get(name, f"{name}_step")))
    check.start -= sizes.budget_s - 150  # 150 s left: the compiled step measures the first pair only
    check.step("compile", lambda: check.step_bench(compile_=True))
    assert [state for _, state, _, _ in check.status] == ["ok"] * 8, check.status
    cmd = check.commands
    assert cmd["tests"][-2:] == ["-n", "4"]  # pytest-xdist is on the GPU machine
    assert "--threads" not in cmd["step"] and cmd["step"][cmd["step"].index("--pairs") + 1] == gpu_check.GPU.pairs
    assert cmd["compile"][cmd["compile"].index("--pairs") + 1] == "tv_resnet18:tv_resnet34"
    assert cmd["compile"][-3:] == ["--compile", "--compile-backend", "inductor"]
    assert "--teacher-backbone" not in cmd["seg"] and cmd["seg"][cmd["seg"].index("--size") + 1:][:2] == ["512", "1024"]
    for name in ("e2e_kd", "plain", "store_kd"):  # the trainer's parser takes what the GPU run passes
        args = parse_args(cmd[name][2:])
        assert (args.amp, args.workers, args.batch_size, args.device) == (True, 16, 256, "cuda"), name
    assert "--amp" in cmd["store_build"] and cmd["store_build"][cmd["store_build"].index("-j") + 1] == "16"
    assert check.metrics["e2e_img_s"] == 200 * 256 / 20.0 and check.metrics["data|uint8|16"] == 4000.0
    assert check.exit_code() == 0
    report = (tmp_path / "gpu_check.md").read_text()
    assert "| end-to-end img/s vs the bound (KD step) | 2560 / 2813 = 0.91 | >= 0.9 | yes |" in report
