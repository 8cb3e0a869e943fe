"""CIFAR-100 distillation benchmark architectures (CRD / RepDistiller), registered as ``cifar_*``.

Parameter and buffer names equal the benchmark's, so its teacher checkpoints (weights under
``model``) load with ``strict=True``. Every model names its last feature map in ``last_stage``.
"""
from classification.models.cifar import (  # noqa: F401  (importing registers the models)
    mobilenetv2,
    resnet,
    resnetv2,
    shufflenetv1,
    shufflenetv2,
    vgg,
    wrn,
)
