"""README.md's "DIST in your own training loop" snippet runs as written and trains the student."""
import re

import torch
from torch import nn

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()
SECTION = README.split("## DIST in your own training loop", 1)[1]
SNIPPET = re.search(r"```python\n(.*?)```", SECTION, flags=re.S).group(1)


def test_snippet_is_short():
    assert len(SNIPPET.strip().splitlines()) <= 13 and "from distkd import DISTLoss" in SNIPPET


def test_snippet_runs_in_an_existing_training_loop():
    torch.manual_seed(0)
    images = torch.randn(64, 3, 8, 8)
    labels = torch.randint(0, 5, (64,))
    student = nn.Sequential(nn.Flatten(), nn.Linear(3 * 64, 5))
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(3 * 64, 32), nn.ReLU(), nn.Linear(32, 5))
    loader = [(images[i:i + 16], labels[i:i + 16]) for i in range(0, 64, 16)]
    optimizer = torch.optim.SGD(student.parameters(), lr=0.1)
    before_s = [p.detach().clone() for p in student.parameters()]
    before_t = [p.detach().clone() for p in teacher.parameters()]
    scope = {"torch": torch, "student": student, "teacher": teacher, "loader": loader,
             "criterion": nn.CrossEntropyLoss(), "optimizer": optimizer}
    exec(compile(SNIPPET, "README.md", "exec"), scope)
    assert torch.isfinite(scope["loss"])
    assert all(not torch.equal(a, p) for a, p in zip(before_s, student.parameters()))
    assert all(torch.equal(a, p) for a, p in zip(before_t, teacher.parameters()))  # the teacher is not trained
    assert type(scope["dist_kd"]).__name__ == "DISTLoss" and scope["dist_kd"].tau == 1.0
