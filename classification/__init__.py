"""Image classification with DIST: models, data, and the training/evaluation loops."""
