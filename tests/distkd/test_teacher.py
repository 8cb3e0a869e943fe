"""The Teacher wrapper: frozen, eval mode, no_grad, the student's memory format and autocast, and the
on-device conversion to the normalisation its weights expect."""
import pytest
import torch
from torch import nn

from distkd.teacher import Renormalize, Teacher, renormalize_or_none

MEAN_S, STD_S = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)
MEAN_T, STD_T = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)


class Recorder(nn.Module):
    """A conv net that keeps the input it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.seen: torch.Tensor | None = None

    def forward(self, x):
        self.seen = x
        return self.bn(self.conv(x)).mean((2, 3))


def expected(x, mean_s=MEAN_S, std_s=STD_S, mean_t=MEAN_T, std_t=STD_T):
    def v(t):
        return torch.tensor(t).view(1, 3, 1, 1)

    return (x * v(std_s) + v(mean_s) - v(mean_t)) / v(std_t)


def test_teacher_is_frozen_in_eval_mode_and_runs_without_grad():
    teacher = Teacher(Recorder())
    teacher.train()
    assert not teacher.training and not teacher.model.training
    assert not any(p.requires_grad for p in teacher.parameters())
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    running = teacher.model.bn.running_mean.clone()
    out = teacher(x)
    assert not out.requires_grad and out.grad_fn is None
    assert torch.equal(teacher.model.bn.running_mean, running)  # eval-mode BatchNorm: statistics untouched


def test_renormalize_converts_to_the_teachers_mean_and_std():
    x = torch.randn(2, 3, 5, 5)
    teacher = Teacher(Recorder(), Renormalize(MEAN_S, STD_S, MEAN_T, STD_T))
    teacher(x)
    torch.testing.assert_close(teacher.model.seen, expected(x))
    raw = x * torch.tensor(STD_S).view(1, 3, 1, 1) + torch.tensor(MEAN_S).view(1, 3, 1, 1)
    torch.testing.assert_close(teacher.model.seen, (raw - torch.tensor(MEAN_T).view(1, 3, 1, 1))
                               / torch.tensor(STD_T).view(1, 3, 1, 1))


def test_renormalize_can_swap_channel_order():
    x = torch.randn(1, 3, 2, 2)
    bgr = Renormalize(MEAN_S, STD_S, MEAN_T[::-1], STD_T[::-1], reverse_channels=True)(x)
    torch.testing.assert_close(bgr.flip(1), expected(x))


def test_no_conversion_when_the_normalisations_agree_or_the_teachers_is_unknown():
    assert renormalize_or_none((MEAN_S, STD_S), (MEAN_S, STD_S)) is None
    assert renormalize_or_none((MEAN_S, STD_S), None) is None
    assert isinstance(renormalize_or_none((MEAN_S, STD_S), (MEAN_T, STD_T)), Renormalize)


def test_conversion_constants_move_with_the_teacher_and_stay_out_of_the_state_dict():
    teacher = Teacher(Recorder(), Renormalize(MEAN_S, STD_S, MEAN_T, STD_T))
    assert not any(k.startswith("renormalize") for k in teacher.state_dict())
    teacher.to(torch.float64)
    assert teacher.renormalize.source_std.dtype == torch.float64
    if torch.cuda.is_available():
        teacher.cuda()
        x = torch.randn(2, 3, 4, 4, device="cuda", dtype=torch.float64)
        teacher(x)
        assert teacher.model.seen.device.type == "cuda"
        torch.testing.assert_close(teacher.model.seen.cpu(), expected(x.cpu()))


def test_teacher_keeps_the_students_memory_format_and_autocast():
    teacher = Teacher(Recorder(), Renormalize(MEAN_S, STD_S, MEAN_T, STD_T)).to(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 6, 6).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = teacher(x)
    assert teacher.model.seen.is_contiguous(memory_format=torch.channels_last)
    assert out.dtype == torch.bfloat16


@pytest.mark.parametrize("reverse", [False, True])
def test_repr_names_the_conversion(reverse):
    text = repr(Renormalize(MEAN_S, STD_S, MEAN_T, STD_T, reverse_channels=reverse))
    assert "0.49" in text and "0.5" in text and ("RGB<->BGR" in text) == reverse
