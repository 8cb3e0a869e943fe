"""The original's launch options: ``--slurm``, ``--dist-port`` and the legacy ``--local-rank``."""
from __future__ import annotations

import os
import shutil
import subprocess

import torch

from distkd.errors import UserError


def set_distributed_env(slurm: bool, dist_port: str | int, local_rank: int) -> None:
    """``slurm``: ranks from srun's SLURM_* variables, port ``dist_port``; ``local_rank`` from the
    legacy ``torch.distributed.launch``. torchrun's own variables, when set, win."""
    if slurm:
        if "SLURM_PROCID" not in os.environ:
            raise UserError("--slurm: SLURM_PROCID is not set; start the job with srun (or drop --slurm)")
        rank, ntasks = int(os.environ["SLURM_PROCID"]), int(os.environ["SLURM_NTASKS"])
        gpus = max(1, torch.cuda.device_count())
        os.environ.setdefault("RANK", str(rank))
        os.environ.setdefault("WORLD_SIZE", str(ntasks))
        os.environ.setdefault("LOCAL_RANK", str(rank % gpus))
        if "MASTER_ADDR" not in os.environ:  # the first node of the job, as the original (scontrol)
            os.environ["MASTER_ADDR"] = _first_node()
    if "WORLD_SIZE" in os.environ:
        os.environ.setdefault("MASTER_PORT", str(dist_port))
        os.environ.setdefault("LOCAL_RANK", str(local_rank))


def _first_node() -> str:
    nodes = []
    if shutil.which("scontrol"):
        nodes = subprocess.run(["scontrol", "show", "hostnames", os.environ.get("SLURM_NODELIST", "")],
                               capture_output=True, text=True, check=False).stdout.split()
    return nodes[0] if nodes else os.environ.get("SLURM_LAUNCH_NODE_IPADDR", "127.0.0.1")
