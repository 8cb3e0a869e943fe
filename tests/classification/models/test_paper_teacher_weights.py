"""``--teacher-pretrained`` torchvision teachers use the paper's V1 weights (the file names the offline error gives)."""
import pytest
import torch

from classification.models import build_model
from distkd.errors import UserError


@pytest.fixture
def empty_hub(tmp_path):
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path))
    yield tmp_path
    torch.hub.set_dir(old)


@pytest.mark.parametrize("name, filename", [
    ("tv_resnet34", "resnet34-b627a593.pth"),  # 73.31
    ("tv_resnet50", "resnet50-0676ba61.pth"),  # 76.13 (V1), not V2's resnet50-11ad3fa6.pth (80.86)
    ("tv_resnet101", "resnet101-63fe2227.pth"),  # 77.37
    ("tv_resnet152", "resnet152-394f9c45.pth"),  # 78.31
])
def test_missing_cache_names_the_v1_file(empty_hub, name, filename):
    with pytest.raises(UserError, match=f"{empty_hub}/checkpoints/{filename}"):
        build_model(name, num_classes=1000, pretrained=True, offline=True)
