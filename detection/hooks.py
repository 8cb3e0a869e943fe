"""``StudentCheckpointHook``: after training, save the student alone as a plain mmdet / mmseg
checkpoint (``{'meta': ..., 'state_dict': ...}``), so `tools/test.py` of mmdet (or our
``tools/test_mmdet.py``) tests it with the student's own config and no teacher weights."""
from __future__ import annotations

import os

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from mmengine.runner.checkpoint import weights_to_cpu

from distkd.utils.checkpoint import atomic_save


def student_of(model):
    """The student inside a (possibly DDP-wrapped) mmrazor algorithm, or the model itself."""
    model = model.module if is_model_wrapper(model) else model
    return getattr(model, "architecture", model)


@HOOKS.register_module()
class StudentCheckpointHook(Hook):
    """Writes ``{work_dir}/{filename}`` holding the student's ``state_dict`` when training ends."""

    priority = "VERY_LOW"

    def __init__(self, filename: str = "student_final.pth") -> None:
        self.filename = filename

    def after_train(self, runner) -> None:
        if not is_main_process():
            return
        student = student_of(runner.model)
        meta = {"epoch": runner.epoch, "iter": runner.iter, "student_of": type(student).__name__}
        dataset_meta = getattr(runner.train_dataloader.dataset, "metainfo", None)
        if dataset_meta:
            meta["dataset_meta"] = {k: v for k, v in dataset_meta.items() if k in ("classes", "palette")}
        path = os.path.join(runner.work_dir, self.filename)
        atomic_save({"meta": meta, "state_dict": weights_to_cpu(student.state_dict())}, path)
        runner.logger.info(f"student-only checkpoint saved to {path}")
