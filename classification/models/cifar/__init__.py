"""CIFAR-100 distillation benchmark architectures (filled in by the model-zoo work)."""
