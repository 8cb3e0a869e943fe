"""The segmentation run configuration: frozen, its derived values computed in one place, recorded as
the flat mapping of the parsed options."""
import dataclasses

import pytest

from distkd.errors import UserError
from segmentation.config import get_args_parser, load_config, parse_args


def test_derived_values_and_the_recorded_mapping():
    argv = ["--student-model", "psp_mobile", "--teacher-model", "deeplabv3", "--teacher-ckpt", "t.pth"]
    config = load_config(argv)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.student.student_backbone = "resnet18"
    assert config.student.student_backbone == "mobilenetv2"
    assert config.run.experiment == "psp_mobile_mobilenetv2-dist-cityscapes"
    recorded, parsed = config.as_dict(), vars(parse_args(argv))
    assert list(recorded) == list(parsed) == list(dict.fromkeys(a.dest for a in get_args_parser()._actions
                                                                if a.dest != "help"))
    assert {k for k in parsed if parsed[k] != recorded[k]} == {"student_backbone", "experiment"}
    assert recorded["crop_size"] == [512, 1024]  # lists stay lists


def test_the_teachers_input_format_comes_from_its_checkpoint_record():
    config = load_config(["--teacher-model", "deeplabv3", "--teacher-ckpt", "t.pth", "--input-format", "imagenet"])
    assert config.with_teacher_record("paper").distill.teacher_input_format == "paper"
    assert config.with_teacher_record(None).distill.teacher_input_format == "imagenet"  # the student's
    assert config.distill.teacher_input_format is None  # the configuration itself is unchanged
    explicit = load_config(["--teacher-model", "deeplabv3", "--teacher-ckpt", "t.pth",
                            "--teacher-input-format", "imagenet"])
    with pytest.raises(UserError, match="contradicts the teacher checkpoint"):
        explicit.with_teacher_record("paper")
