"""Cityscapes semantic segmentation with DIST (DeepLabV3 / PSPNet students, DeepLabV3-R101 teacher)."""
