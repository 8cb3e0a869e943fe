"""KD losses and the registry of the ``--kd`` method names."""
from distkd.losses.dist_kd import DISTLoss, dist_loss
from distkd.losses.feature_mse import FeatureMSE
from distkd.losses.kl_kd import KLDivKD, kl_kd_loss
from distkd.losses.registry import KD_METHODS, build_kd_loss, parse_kd_name

__all__ = [
    "DISTLoss", "dist_loss", "KLDivKD", "kl_kd_loss", "FeatureMSE",
    "KD_METHODS", "build_kd_loss", "parse_kd_name",
]
