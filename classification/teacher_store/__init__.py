"""Teacher outputs computed once and replayed (docs/teacher_store.md)."""
from classification.teacher_store.builder import build_store
from classification.teacher_store.replay import ReplayDataset, replay_loader, sample_view
from classification.teacher_store.store import TeacherStore, rebuild_topk, topk_split
from classification.teacher_store.views import ReplayRecipe

__all__ = ["ReplayDataset", "ReplayRecipe", "TeacherStore", "build_store", "rebuild_topk",
           "replay_loader", "sample_view", "topk_split"]
