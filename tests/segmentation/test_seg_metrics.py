"""mIoU against hand-computed confusion matrices."""
import math

import torch

from segmentation.engine.metrics import ConfusionMatrix


def test_miou_matches_hand_computed_matrix_with_absent_class():
    matrix = ConfusionMatrix(3, ignore_index=255)
    target = torch.tensor([[0, 0, 1], [1, 255, 0]])
    pred = torch.tensor([[0, 1, 1], [0, 2, 0]])  # the only "2" lies on an ignored pixel
    matrix.update(pred, target)
    assert matrix.matrix.tolist() == [[2, 1, 0], [1, 1, 0], [0, 0, 0]]
    iou = matrix.iou()
    assert math.isclose(iou[0], 2 / (3 + 3 - 2)) and math.isclose(iou[1], 1 / (2 + 2 - 1))
    assert math.isnan(iou[2])  # neither labelled nor predicted: left out of the mean
    assert math.isclose(matrix.miou(), (0.5 + 1 / 3) / 2)
    assert math.isclose(matrix.pixel_accuracy(), 3 / 5)


def test_predicted_but_absent_class_counts_as_zero():
    matrix = ConfusionMatrix(3)
    matrix.update(torch.tensor([2, 1]), torch.tensor([0, 1]))
    assert matrix.iou().tolist() == [0.0, 1.0, 0.0]
    assert math.isclose(matrix.miou(), 1 / 3)


def test_updates_accumulate():
    matrix = ConfusionMatrix(2)
    for _ in range(3):
        matrix.update(torch.tensor([0, 1]), torch.tensor([0, 0]))
    assert matrix.matrix.tolist() == [[3, 3], [0, 0]]
    assert math.isclose(matrix.miou(), (0.5 + 0.0) / 2)
