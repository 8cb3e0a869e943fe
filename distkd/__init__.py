"""distkd: DIST knowledge distillation (Huang et al., NeurIPS 2022) for PyTorch.

The public API: ``DISTLoss`` / ``dist_loss`` (the paper's loss), ``KLDivKD`` / ``kl_kd_loss``
(KD), ``FeatureMSE``, the KD registry (``KD_METHODS``, ``build_kd_loss('dist_t4')``) and
``Distiller`` (student + frozen teacher + losses in one module). Importing it needs torch alone.
"""
from distkd.distiller import Distiller
from distkd.losses import (
    KD_METHODS,
    DISTLoss,
    FeatureMSE,
    KLDivKD,
    build_kd_loss,
    dist_loss,
    kl_kd_loss,
    parse_kd_name,
)

__version__ = "0.1.0"
__all__ = ["Distiller", "DISTLoss", "dist_loss", "KLDivKD", "kl_kd_loss", "FeatureMSE", "KD_METHODS",
           "build_kd_loss", "parse_kd_name", "__version__"]
