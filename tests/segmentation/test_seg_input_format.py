"""Input formats: the paper's (BGR minus its mean, no std) and ImageNet's; recorded in checkpoints and
used again wherever a checkpoint runs (evaluation, a teacher, resume)."""
import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from distkd.errors import UserError
from distkd.teacher import Teacher
from distkd.utils.checkpoint import safe_load
from segmentation import test as seg_test
from segmentation.datasets import INPUT_FORMATS, EvalTransform, TrainTransform, recorded_input_format, reformat
from segmentation.models import WithAux, build_segmentor
from segmentation.train import main
from tests.segmentation.paper_nets import network_shapes, random_state

PAPER_MEAN_BGR = (104.00698793, 116.66876762, 122.67891434)
ULP = 3e-5  # float32 rounding of values near 130
TINY = ["--crop-size", "32", "64", "--batch-size", "2", "--workers", "0", "--no-progress", "--device", "cpu",
        "--max-iterations", "1"]  # fmt: skip


def rgb_image() -> Image.Image:
    array = np.zeros((2, 3, 3), dtype=np.uint8)
    array[0, 0] = (10, 20, 30)  # R, G, B
    array[1, 2] = (255, 0, 128)
    return Image.fromarray(array)


def test_paper_format_is_bgr_minus_the_paper_mean():
    x, _ = EvalTransform("paper")(rgb_image(), None)
    assert x.shape == (3, 2, 3) and x.dtype == torch.float32
    b, g, r = PAPER_MEAN_BGR
    torch.testing.assert_close(x[:, 0, 0], torch.tensor([30 - b, 20 - g, 10 - r]), rtol=0, atol=ULP)
    torch.testing.assert_close(x[:, 1, 2], torch.tensor([128 - b, 0 - g, 255 - r]), rtol=0, atol=ULP)
    torch.testing.assert_close(x[:, 0, 1], torch.tensor([-b, -g, -r]), rtol=0, atol=ULP)


def test_imagenet_format_is_rgb_mean_std():
    x, _ = EvalTransform("imagenet")(rgb_image(), None)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(x[:, 0, 0], (torch.tensor([10, 20, 30]) / 255 - mean) / std)


def test_train_transform_uses_the_format_and_pads_with_the_mean_colour():
    label = np.zeros((2, 3), dtype=np.uint8)
    img, lbl = TrainTransform((8, 8), scale_range=(1.0, 1.0), flip=False)(rgb_image(), label)
    b, g, r = PAPER_MEAN_BGR
    torch.testing.assert_close(img[:, 0, 0], torch.tensor([30 - b, 20 - g, 10 - r]), rtol=0, atol=ULP)
    assert img[:, 7, 7].abs().max() == 0 and lbl[7, 7] == 255  # padding: the mean colour / ignore


def test_reformat_converts_exactly():
    image = rgb_image()
    paper, _ = EvalTransform("paper")(image, None)
    imagenet, _ = EvalTransform("imagenet")(image, None)
    to_imagenet = reformat(INPUT_FORMATS["paper"], INPUT_FORMATS["imagenet"])
    torch.testing.assert_close(to_imagenet(paper[None])[0], imagenet)
    torch.testing.assert_close(reformat(INPUT_FORMATS["imagenet"], INPUT_FORMATS["paper"])(imagenet[None])[0], paper)
    teacher = build_segmentor("deeplabv3", "resnet18").eval()
    x = torch.randn(1, 3, 32, 32) * 50
    with torch.no_grad():
        want = teacher.forward_with_aux(to_imagenet(x))
        got = Teacher(WithAux(teacher), to_imagenet)(x)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


def test_recorded_input_format():
    assert recorded_input_format({"model": {}, "input_format": "imagenet"}) == "imagenet"
    assert recorded_input_format({"model": {}, "args": {"input_format": "paper"}}) == "paper"
    assert recorded_input_format({"pretrained.conv1.weight": torch.zeros(1)}) == "paper"  # the paper's files
    assert recorded_input_format({"backbone.body.conv1.weight": torch.zeros(1)}) is None


def test_checkpoint_is_evaluated_with_the_format_it_was_trained_with(cityscapes, tmp_path, monkeypatch):
    save = tmp_path / "run"
    main(["--data", str(cityscapes), "--save-dir", str(save), *TINY, "--student-backbone", "resnet18",
          "--input-format", "imagenet"])  # fmt: skip
    assert recorded_input_format(safe_load(save / "best.pth")) == "imagenet"
    assert yaml.safe_load((save / "args.yaml").read_text())["input_format"] == "imagenet"

    used = []
    original = seg_test.EvalTransform
    monkeypatch.setattr(seg_test, "EvalTransform", lambda fmt: used.append(fmt) or original(fmt))
    common = ["--model", "deeplabv3", "--checkpoint", str(save / "best.pth"), "--data", str(cityscapes),
              "--workers", "0", "--device", "cpu"]  # fmt: skip
    out = seg_test.main(common)  # backbone and format read from the checkpoint
    assert used == ["imagenet"] and out["input_format"] == "imagenet"
    with pytest.raises(UserError, match="trained with input format 'imagenet'"):
        seg_test.main([*common, "--input-format", "paper"])
    with pytest.raises(UserError, match="--input-format imagenet"):  # resume under another format
        main(["--data", str(cityscapes), "--save-dir", str(save), *TINY, "--student-backbone", "resnet18",
              "--input-format", "paper", "--resume", "--max-iterations", "2"])  # fmt: skip

    # the paper's own files (bare state dict, pretrained.* keys) are evaluated in the paper's format
    torch.save(random_state(network_shapes("psp", "resnet18_v1s")), tmp_path / "paper_psp.pth")
    used.clear()
    out = seg_test.main(["--model", "psp", "--checkpoint", str(tmp_path / "paper_psp.pth"), *common[4:]])
    assert used == ["paper"] and out["input_format"] == "paper"


def test_teacher_of_another_format_gets_its_own_input(cityscapes, tmp_path):
    teacher_dir = tmp_path / "teacher"
    main(["--data", str(cityscapes), "--save-dir", str(teacher_dir), *TINY, "--student-backbone", "resnet18",
          "--input-format", "imagenet"])  # fmt: skip
    student_dir = tmp_path / "kd"
    main(["--data", str(cityscapes), "--save-dir", str(student_dir), *TINY, "--student-backbone", "resnet18",
          "--teacher-model", "deeplabv3", "--teacher-backbone", "resnet18", "--teacher-pretrained",
          str(teacher_dir / "best.pth"), "--input-format", "paper"])  # fmt: skip
    recorded = yaml.safe_load((student_dir / "args.yaml").read_text())
    assert (recorded["input_format"], recorded["teacher_input_format"]) == ("paper", "imagenet")
    with pytest.raises(UserError, match="contradicts the teacher checkpoint"):
        main(["--data", str(cityscapes), "--save-dir", str(tmp_path / "kd2"), *TINY, "--teacher-model",
              "deeplabv3", "--teacher-backbone", "resnet18", "--teacher-pretrained", str(teacher_dir / "best.pth"),
              "--teacher-input-format", "paper"])  # fmt: skip
