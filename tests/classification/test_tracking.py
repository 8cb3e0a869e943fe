"""``--log-wandb``: Weights & Biases in its offline mode (only where wandb is installed)."""
import sys

import pytest

from classification.train import main
from distkd.errors import UserError
from tests.conftest import ROOT

QUICK = ["-c", str(ROOT / "configs" / "digits.yaml"), "--device", "cpu", "--max-iters-per-epoch", "2",
         "--image-size", "16", "-b", "16", "--epochs", "2", "--model", "cifar_resnet8"]


def test_missing_wandb_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb -> ImportError
    with pytest.raises(UserError, match=r"pip install 'distkd\[wandb\]'"):
        main(QUICK + ["--output", str(tmp_path), "--experiment", "w", "--log-wandb"])


@pytest.mark.slow
def test_wandb_offline_run_logs_every_epoch(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    logged = []
    real_init = wandb.init

    def spy_init(*args, **kwargs):
        run = real_init(*args, **kwargs)
        real_log = run.log
        run.log = lambda data, step=None, **kw: (logged.append((step, dict(data))), real_log(data, step=step, **kw))
        return run

    monkeypatch.setattr(wandb, "init", spy_init)
    main(QUICK + ["--output", str(tmp_path), "--experiment", "w", "--log-wandb", "--wandb-project", "test"])
    assert [step for step, _ in logged] == [0, 1]
    assert {"val_top1", "train_loss", "lr"} <= set(logged[0][1])
    runs = list((tmp_path / "w" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and (tmp_path / "w" / "wandb_id.txt").read_text().strip() in runs[0].name
    assert (tmp_path / "w" / "metrics.csv").is_file()  # TensorBoard / metrics.csv as before
