"""The segmentation losses and inference: DIST (and any per-pixel registry method) through the core
loss on the main and aux heads, CE + aux, flip TTA."""
import torch
import torch.nn.functional as F

from distkd.losses import build_kd_loss, kl_kd_loss
from distkd.losses.dist_kd import dist_loss
from segmentation.engine.inference import predict
from segmentation.engine.losses import HeadsKD, SegCrossEntropy


def SegDIST(aux_weight: float = 0.4) -> HeadsKD:  # noqa: N802 (the paper's DIST on both heads, from the registry)
    return HeadsKD(build_kd_loss("dist"), aux_weight)


def test_dist_on_dense_logits_treats_every_pixel_as_a_sample():
    torch.manual_seed(0)
    s, t, s_aux, t_aux = (torch.randn(2, 19, 4, 8) for _ in range(4))
    as_samples = lambda z: z.permute(0, 2, 3, 1).reshape(-1, 19)  # noqa: E731
    torch.testing.assert_close(SegDIST(aux_weight=0)(s, t), dist_loss(as_samples(s), as_samples(t)))
    expected = dist_loss(s, t) + 0.4 * dist_loss(s_aux, t_aux)
    torch.testing.assert_close(SegDIST()((s, s_aux), (t, t_aux)), expected)
    torch.testing.assert_close(SegDIST()((s, s_aux), (t, None)), dist_loss(s, t))  # teacher without aux


def test_any_per_pixel_method_runs_on_both_heads():
    torch.manual_seed(0)
    s, t, s_aux, t_aux = (torch.randn(2, 19, 4, 8) for _ in range(4))
    kd = HeadsKD(build_kd_loss("kd", tau=2.0, ls=1), 0.4)
    expected = kl_kd_loss(s, t, 2.0, ls=True) + 0.4 * kl_kd_loss(s_aux, t_aux, 2.0, ls=True)
    torch.testing.assert_close(kd((s, s_aux), (t, t_aux)), expected)


def test_cross_entropy_upsamples_ignores_255_and_weights_aux():
    torch.manual_seed(0)
    main, aux = torch.randn(2, 19, 4, 8), torch.randn(2, 19, 4, 8)
    target = torch.randint(0, 19, (2, 32, 64))
    target[:, :5] = 255
    up = lambda z: F.interpolate(z, size=(32, 64), mode="bilinear", align_corners=True)  # noqa: E731
    ce = lambda z: F.cross_entropy(up(z), target, ignore_index=255)  # noqa: E731
    torch.testing.assert_close(SegCrossEntropy()((main, aux), target), ce(main) + 0.4 * ce(aux))
    torch.testing.assert_close(SegCrossEntropy()(main, target), ce(main))


def test_flip_prediction_adds_the_flipped_back_probabilities():
    torch.manual_seed(0)
    model = torch.nn.Conv2d(3, 5, 3, padding=1).eval()  # position-dependent through its kernel
    x = torch.randn(1, 3, 8, 16)
    with torch.no_grad():
        expected = model(x).softmax(1) + model(x.flip(-1)).flip(-1).softmax(1)
    torch.testing.assert_close(predict(model, x, (1.0,), flip=True), expected)
    multi = predict(model, x, (0.5, 1.0, 1.5), flip=True)
    assert multi.shape == (1, 5, 8, 16)
    torch.testing.assert_close(multi.sum(1), torch.full((1, 8, 16), 6.0))  # 3 scales x 2 flips of probabilities
