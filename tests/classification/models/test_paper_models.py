"""Every classification model named in the paper's tables builds and gives logits of the right shape."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from classification.models import build_model

REPO = Path(__file__).resolve().parents[3]
PAPER_TABLE = REPO / "reproduce" / "paper_tables.csv"


def paper_classification_models() -> list[str]:
    with open(PAPER_TABLE, newline="") as f:
        rows = [row for row in csv.DictReader(f) if row["task"] == "classification"]
    return sorted({row[column] for row in rows for column in ("student_model", "teacher_model") if row[column]})


PAPER_MODELS = paper_classification_models()


HEAVY = ("large", "resnet101", "resnet152")  # 45M-200M parameters: seconds each on 2 CPU cores


def _param(name: str):
    return pytest.param(name, marks=pytest.mark.slow) if any(h in name for h in HEAVY) else name


def test_paper_table_is_found_and_lists_both_families():
    assert PAPER_MODELS, f"no classification rows in {PAPER_TABLE}"
    assert any(n.startswith("cifar_") for n in PAPER_MODELS) and "mobilenet_v1" in PAPER_MODELS


@pytest.mark.parametrize("name", [_param(n) for n in PAPER_MODELS])
def test_paper_model_builds_and_runs(name: str):
    torch.manual_seed(0)
    model = build_model(name, num_classes=10).eval()
    size = 32 if name.startswith("cifar_") else 64
    patch_embed = getattr(model, "patch_embed", None)  # vision transformers need their training size
    if patch_embed is not None and getattr(patch_embed, "img_size", None):
        size = patch_embed.img_size[0]
    with torch.no_grad():
        logits = model(torch.randn(1, 3, size, size))
    assert logits.shape == (1, 10)
    assert torch.isfinite(logits).all()
