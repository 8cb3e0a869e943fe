"""The step policy both trainers share: the autocast dtype of one option, the scaler only for float16 on
CUDA, the optimizer step (clipping, accumulation), per-step seeding and when something is due."""
import pytest
import torch
from torch import nn

from distkd.step import StepPolicy, amp_dtype, due, grad_scaler

CPU = torch.device("cpu")


def test_one_option_chooses_the_autocast_dtype():
    assert amp_dtype(False, "float16", CPU) is None
    assert amp_dtype(True, "auto", CPU) == amp_dtype(True, "bfloat16", CPU) == torch.bfloat16
    assert amp_dtype(True, "float16", CPU) == torch.float16


def test_a_grad_scaler_only_for_float16_on_cuda():
    assert grad_scaler(torch.float16, CPU) is None and grad_scaler(torch.bfloat16, CPU) is None
    assert grad_scaler(None, torch.device("cuda")) is None and grad_scaler(torch.bfloat16, torch.device("cuda")) is None


@pytest.mark.parametrize("every, last, expected", [(3, 10, [3, 6, 9, 10]), (0, 10, [10]), (4, None, [4, 8])])
def test_due_every_n_steps_and_at_the_last(every, last, expected):
    assert [done for done in range(1, 11) if due(done, every, last)] == expected


def step_weights(policy: StepPolicy, micro_batches: list[torch.Tensor]) -> torch.Tensor:
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for x in micro_batches:
        with policy.autocast():
            loss = model(x).pow(2).sum()
        policy.backward(loss)
    policy.step(optimizer, model.parameters())
    return model.weight.detach().clone()


def test_accumulated_micro_batches_step_as_their_mean_and_clipping_bounds_the_gradient():
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(1)) * 10
    whole = step_weights(StepPolicy(CPU), [x])
    halves = step_weights(StepPolicy(CPU, accum_steps=2), [x[:3], x[3:]])
    torch.manual_seed(0)
    start = nn.Linear(4, 2).weight.detach()
    torch.testing.assert_close(halves - start, (whole - start) / 2)  # the sum's gradient over K = 2
    clipped = step_weights(StepPolicy(CPU, clip_grad=0.01), [x])
    assert torch.linalg.vector_norm(clipped - start) <= 0.1 * 0.01 * 1.0001  # lr x the max norm


def test_each_step_is_seeded_from_seed_epoch_step_and_the_rank_it_plays():
    def draw(policy: StepPolicy, *where: int) -> torch.Tensor:
        policy.seed_step(*where)
        return torch.rand(3)

    assert torch.equal(draw(StepPolicy(CPU, seed=1), 0, 5), draw(StepPolicy(CPU, seed=1), 0, 5))
    assert not torch.equal(draw(StepPolicy(CPU, seed=1), 0, 5), draw(StepPolicy(CPU, seed=1), 0, 6))
    # micro-batch 1 of rank 0 with K = 2 plays GPU 1: rank 1's draws
    assert torch.equal(draw(StepPolicy(CPU, accum_steps=2), 0, 5, 1), draw(StepPolicy(CPU, rank=1), 0, 5))


def test_a_scaler_scales_the_backward_and_unscales_before_clipping():
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(1)) * 10
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=1)
    scaled = step_weights(StepPolicy(CPU, scaler=scaler, clip_grad=0.01), [x])
    torch.testing.assert_close(scaled, step_weights(StepPolicy(CPU, clip_grad=0.01), [x]))
    assert scaler.get_scale() == 2048.0  # a finite step: it stepped and grew the scale
