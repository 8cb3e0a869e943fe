"""distkd: DIST knowledge distillation (Huang et al., NeurIPS 2022) for PyTorch."""
from distkd.distiller import Distiller
from distkd.losses import DISTLoss, build_kd_loss, dist_loss, kl_kd_loss

__version__ = "0.1.0"
__all__ = ["Distiller", "DISTLoss", "build_kd_loss", "dist_loss", "kl_kd_loss", "__version__"]
