"""KD, DKD and DIST, with and without logit standardisation (LS), on the paper's six CIFAR-100 pairs.

``python tools/reproduce.py cifar100-methods`` lists the runs; ``tools/report.py`` puts each measured
number beside the published one, with its source.

**One recipe, the DIST paper's** (``configs/strategies/distill/dist_cifar.yaml``: 240 epochs, 64
images, SGD lr 0.05 without Nesterov, x0.1 at 150/180/210, weight decay 5e-4; lr 0.01 for the
MobileNetV2 / ShuffleNet students, as the paper's rows). It is also mdistiller's CIFAR-100 schedule,
so each method keeps its authors' loss settings and only the loss differs between the columns:

=========  ================================================================  =========================
column     loss (CE weight + KD weight x method)                             config
=========  ================================================================  =========================
kd         0.9 CE + 1.0 KD, T 4 (the project's KD recipe, as the paper's     ``kd_cifar.yaml``
           ImageNet KD)
kd_ls      0.1 CE + 9 KD on standardised logits, T 2 (the LS README's        ``kd_ls_cifar.yaml``
           ``--logit-stand --base-temp 2 --kd-weight 9``)
dkd        CE + DKD, alpha 1, beta 8 (mdistiller's per-pair beta: 6 for      ``dkd_cifar.yaml``
           WRN-40-2 -> WRN-40-1, 2 for ResNet56 -> ResNet20), T 4, warm-up 20
dkd_ls     CE + DKD on standardised logits, alpha 9, beta 9 x the pair's     ``dkd_ls_cifar.yaml``
           beta, T 2, warm-up 20 (the LS README's command on mdistiller's
           DKD configs)
dist       CE + 2 DIST, tau 4 (the paper's)                                  ``dist_cifar.yaml``
dist_ls    CE + 2 DIST on standardised logits, tau 2: no published setting,  ``dist_ls_cifar.yaml``
           this project's choice (the LS authors' base temperature)
=========  ================================================================  =========================

**Each method's own published recipe** (``--recipe published``) adds the runs whose published
setting differs from the above: ``kd_pub`` (mdistiller's KD, 0.1 CE + 0.9 KD, T 4, as CRD), and,
where the LS authors' logs (``logs/KD``, ``logs/DKD`` of their repository, named
``method,teacher,student,T,kd_weight[,beta]``) used other values than their README command,
``kd_ls_pub`` and ``dkd_ls_pub``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from distkd.losses import kd_config
from reproduce.paper import PaperRow

TABLE = "cifar100-methods"
PAPER_RECIPE_COLUMNS = ("kd", "kd_ls", "dkd", "dkd_ls", "dist", "dist_ls")
PUBLISHED_RECIPE_COLUMNS = ("kd_pub", "kd_ls_pub", "dkd_ls_pub")
COLUMNS = PAPER_RECIPE_COLUMNS + PUBLISHED_RECIPE_COLUMNS
TITLES = {"kd": "KD", "kd_ls": "KD+LS", "dkd": "DKD", "dkd_ls": "DKD+LS", "dist": "DIST", "dist_ls": "DIST+LS",
          "kd_pub": "KD (mdistiller's weights)", "kd_ls_pub": "KD+LS (the authors' logged T, weight)",
          "dkd_ls_pub": "DKD+LS (the authors' logged T, weight, beta)"}
RECIPES = ("paper", "published")

_DISTILL = "configs/strategies/distill"

# --- published numbers -------------------------------------------------------------------------

MDISTILLER = "mdistiller"
LS = "LS"
DIST_PAPER = "DIST paper"
SOURCES = {
    MDISTILLER: "megvii-research/mdistiller README, CIFAR-100 tables (KD and DKD; KD numbers as in CRD)",
    LS: "sunshangquan/logit-standardization-KD README, CIFAR-100 tables (KD, KD+LS, DKD, DKD+LS)",
    DIST_PAPER: "Huang et al., NeurIPS 2022, Table 5 (paper_tables.csv)",
}

# (student, teacher) -> column -> (top-1, source). ResNet32x4 -> ShuffleNet-V2: the LS README's
# table; mdistiller's README gives the same KD / DKD numbers (74.45 / 77.07) under a column it labels
# "ResNet32x4 -> MobileNet-V2" (the DKD paper's ShuffleNet-V2 row). ResNet32x4 -> ShuffleNet-V1 has
# no published LS number.
PUBLISHED: dict[tuple[str, str], dict[str, tuple[float, str]]] = {
    ("cifar_wrn_40_1", "cifar_wrn_40_2"): {"kd": (73.54, MDISTILLER), "dkd": (74.81, MDISTILLER),
                                           "kd_ls": (74.37, LS), "dkd_ls": (74.89, LS)},
    ("cifar_resnet20", "cifar_resnet56"): {"kd": (70.66, MDISTILLER), "dkd": (71.97, MDISTILLER),
                                           "kd_ls": (71.43, LS), "dkd_ls": (72.32, LS)},
    ("cifar_resnet8x4", "cifar_resnet32x4"): {"kd": (73.33, MDISTILLER), "dkd": (76.32, MDISTILLER),
                                              "kd_ls": (76.62, LS), "dkd_ls": (77.01, LS)},
    ("cifar_mobile_half", "cifar_ResNet50"): {"kd": (67.35, MDISTILLER), "dkd": (70.35, MDISTILLER),
                                              "kd_ls": (69.02, LS), "dkd_ls": (70.45, LS)},
    ("cifar_ShuffleV1", "cifar_resnet32x4"): {"kd": (74.07, MDISTILLER), "dkd": (76.45, MDISTILLER)},
    ("cifar_ShuffleV2", "cifar_resnet32x4"): {"kd": (74.45, LS), "dkd": (77.07, LS),
                                              "kd_ls": (75.56, LS), "dkd_ls": (77.37, LS)},
}

# mdistiller's DKD beta per pair (configs/cifar100/dkd/*.yaml; 8 where a config sets none).
DKD_BETA = {("cifar_wrn_40_1", "cifar_wrn_40_2"): 6.0, ("cifar_resnet20", "cifar_resnet56"): 2.0}
# The LS authors' logged settings where they differ from their README command (T 2, weight 9, and
# for DKD the config's beta): KD (T, weight), DKD (T, weight, beta before the x weight).
LS_KD_LOGGED = {("cifar_mobile_half", "cifar_ResNet50"): (3.0, 1.0)}
LS_DKD_LOGGED = {("cifar_wrn_40_1", "cifar_wrn_40_2"): (2.0, 12.0, 2.0),
                 ("cifar_resnet20", "cifar_resnet56"): (3.0, 18.0, 2.0),
                 ("cifar_mobile_half", "cifar_ResNet50"): (2.0, 15.0, 2.0)}


def published(row: PaperRow, column: str) -> tuple[float | None, str]:
    """The published top-1 of ``column`` for the row's pair, and its source (``None``, "" if none)."""
    base = column.removesuffix("_pub")
    if base == "dist":
        return row.dist, DIST_PAPER
    return PUBLISHED.get((row.student_model, row.teacher_model), {}).get(base, (None, ""))


# --- settings ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Setting:
    """What a run of one column trains with: ``-c config --kd kd`` plus ``extra`` options, which give
    the method ``options`` (every option, after the method's defaults) and the loss weights."""

    config: str
    kd: str
    options: Mapping[str, Any]
    ori_weight: float
    kd_weight: float
    extra: tuple[str, ...] = ()
    note: str = ""
    signature: tuple = field(init=False, compare=False)

    def __post_init__(self) -> None:
        config = kd_config(self.kd, dict(self.options))
        object.__setattr__(self, "signature", (config.method, tuple(sorted(config.options.items()))))


def run_signature(kd: str, options: Mapping[str, Any]) -> tuple | None:
    """The method and its full options of a run's ``--kd`` / ``--kd-loss-kwargs`` (None: not a valid method)."""
    try:
        config = kd_config(kd, dict(options))
    except ValueError:
        return None
    return config.method, tuple(sorted(config.options.items()))


def _kwargs(**options: Any) -> tuple[str, ...]:
    return ("--kd-loss-kwargs", *(f"{k}={v}" for k, v in options.items())) if options else ()


def settings(row: PaperRow) -> dict[str, Setting]:
    """Every column's setting for the row's pair (published-recipe columns only where they differ)."""
    pair = (row.student_model, row.teacher_model)
    beta = DKD_BETA.get(pair, 8.0)
    out = {
        "kd": Setting(f"{_DISTILL}/kd_cifar.yaml", "kdt4", {}, 0.9, 1.0),
        "kd_ls": Setting(f"{_DISTILL}/kd_ls_cifar.yaml", "kd", {"tau": 2.0, "ls": True}, 0.1, 9.0),
        "dkd": Setting(f"{_DISTILL}/dkd_cifar.yaml", "dkd", {"alpha": 1.0, "beta": beta, "tau": 4.0, "warmup": 20},
                       1.0, 1.0, _kwargs(beta=beta) if beta != 8.0 else ()),
        "dkd_ls": Setting(f"{_DISTILL}/dkd_ls_cifar.yaml", "dkd",
                          {"alpha": 9.0, "beta": 9 * beta, "tau": 2.0, "warmup": 20, "ls": True}, 1.0, 1.0,
                          _kwargs(beta=9 * beta) if beta != 8.0 else ()),
        "dist": Setting(f"{_DISTILL}/dist_cifar.yaml", "dist_t4", {}, 1.0, 2.0),
        "dist_ls": Setting(f"{_DISTILL}/dist_ls_cifar.yaml", "dist", {"tau": 2.0, "ls": True}, 1.0, 2.0,
                           note="no published setting: this project's choice (tau 2, the LS base temperature)"),
        "kd_pub": Setting(f"{_DISTILL}/kd_cifar.yaml", "kdt4", {}, 0.1, 0.9,
                          ("--ori-loss-weight", "0.1", "--kd-loss-weight", "0.9"),
                          note="mdistiller's KD loss weights (0.1 CE + 0.9 KD, T 4)"),
    }
    if pair in LS_KD_LOGGED:
        tau, weight = LS_KD_LOGGED[pair]
        out["kd_ls_pub"] = Setting(f"{_DISTILL}/kd_ls_cifar.yaml", "kd", {"tau": tau, "ls": True}, 0.1, weight,
                                   (*_kwargs(tau=tau), "--kd-loss-weight", f"{weight:g}"),
                                   note=f"the LS authors' log: T {tau:g}, KD weight {weight:g}")
    if pair in LS_DKD_LOGGED:
        tau, weight, ls_beta = LS_DKD_LOGGED[pair]
        out["dkd_ls_pub"] = Setting(
            f"{_DISTILL}/dkd_ls_cifar.yaml", "dkd",
            {"alpha": weight, "beta": weight * ls_beta, "tau": tau, "warmup": 20, "ls": True}, 1.0, 1.0,
            _kwargs(alpha=weight, beta=weight * ls_beta, tau=tau),
            note=f"the LS authors' log: T {tau:g}, weight {weight:g}, beta {ls_beta:g} x {weight:g}")
    return out


def columns_of(recipe: str) -> tuple[str, ...]:
    return PAPER_RECIPE_COLUMNS if recipe == "paper" else COLUMNS


def column_of(row: PaperRow, kd: str | None, options: Mapping[str, Any],
              weights: tuple[float | None, float | None]) -> str | None:
    """The column a run of the row's pair with this ``--kd`` setting belongs to (None: no column).
    Loss weights are compared where the run recorded them."""
    if not kd:
        return None
    signature = run_signature(kd, options)
    for column, setting in settings(row).items():
        if setting.signature != signature:
            continue
        ori, kd_weight = weights
        if (ori is None or ori == setting.ori_weight) and (kd_weight is None or kd_weight == setting.kd_weight):
            return column
    return None


def method_rows(rows: Sequence[PaperRow]) -> list[PaperRow]:
    """The paper's CIFAR-100 rows (the six pairs)."""
    return [row for row in rows if row.table == "cifar100"]
