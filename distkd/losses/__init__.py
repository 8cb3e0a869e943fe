"""KD losses, the registry of the ``--kd`` method names and the one ``kd`` configuration."""
from distkd.losses.common import standardize
from distkd.losses.dist_kd import DISTLoss, dist_loss
from distkd.losses.dkd import DKD, dkd_loss
from distkd.losses.feature_mse import FeatureMSE
from distkd.losses.kl_kd import KLDivKD, kl_kd_loss
from distkd.losses.registry import KD_METHODS, KDConfig, apply_kd, build_kd_loss, kd_config, parse_kd_name

__all__ = ["DISTLoss", "dist_loss", "DKD", "dkd_loss", "KLDivKD", "kl_kd_loss", "FeatureMSE", "standardize",
           "KD_METHODS", "KDConfig", "kd_config", "build_kd_loss", "parse_kd_name", "apply_kd"]
