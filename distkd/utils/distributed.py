"""``torch.distributed`` set-up for ``torchrun`` launches: NCCL on GPUs, gloo on CPU.

A dead rank never hangs the job: collectives time out after ``DISTKD_DIST_TIMEOUT`` seconds
(default 600; a rank that exits or is killed makes gloo fail at once, torchrun then stops the
others), and a rank that raises records itself in the rendezvous store, so rank 0 ends with one
line naming it (:func:`raise_if_peer_failed`).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from distkd.errors import UserError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str = "auto") -> DistInfo:
    """Read torchrun's env vars (RANK, WORLD_SIZE, LOCAL_RANK) and start the process group.

    ``device``: ``auto`` (CUDA when present), ``cuda`` (fails clearly without a GPU) or ``cpu``.
    """
    if device not in ("auto", "cuda", "cpu"):
        raise UserError(f"--device must be auto, cuda or cpu, got '{device}'")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu")
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        global _STORE
        timeout = timedelta(seconds=float(os.environ.get("DISTKD_DIST_TIMEOUT", "600")))
        # The store env:// would create (torchrun's agent hosts it, else rank 0), kept for failure reports.
        hosted_by_agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE", "").lower() == "true"
        _STORE = dist.TCPStore(os.environ.get("MASTER_ADDR", "127.0.0.1"), int(os.environ.get("MASTER_PORT", "29500")),
                               world_size, is_master=rank == 0 and not hosted_by_agent, timeout=timeout)
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", store=_STORE, rank=rank,
                                world_size=world_size, timeout=timeout)
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=dev)


_STORE: dist.Store | None = None
_FAILED_KEY = "distkd/failed_rank"


class RankFailed(Exception):
    """Another rank failed; this one stops too (the command-line tools print one line, exit 1)."""


def _is_collective_error(err: BaseException) -> bool:
    """A failure of communication (a consequence of another rank's failure), not of this rank."""
    text = str(err).lower()
    return isinstance(err, dist.DistError) or any(w in text for w in ("gloo", "nccl", "connection closed", "timed out"))


def raise_if_peer_failed(err: BaseException, rank: int) -> None:
    """Call on the way out of a failed distributed run. A rank whose own code failed records itself;
    on rank 0, a failure caused by another rank becomes :class:`RankFailed` naming that rank."""
    if _STORE is None or isinstance(err, (KeyboardInterrupt, SystemExit)) or type(err).__name__ == "Preempted":
        return
    own = not _is_collective_error(err)
    try:
        if own:
            text = " ".join(str(err).split())[:1000 if isinstance(err, UserError) else 200]
            _STORE.compare_set(_FAILED_KEY, "", f"{rank}|{type(err).__name__}: {text}")
        if rank != 0 or (own and rank == 0):
            return
        for _ in range(50):  # the failing rank writes before its sockets close; allow for slow file systems
            if _STORE.check([_FAILED_KEY]):
                rank_text, reason = _STORE.get(_FAILED_KEY).decode().split("|", 1)
                failed = f"rank {rank_text}"
                break
            time.sleep(0.05)
        else:
            failed, reason = "another rank", "exited or was killed; torchrun's summary names it"
    except Exception:  # the store went down with its host: name no rank
        failed, reason = "another rank", "exited or was killed; torchrun's summary names it"
    if reason.startswith("UserError: "):  # bad input seen by that rank alone: its own one line
        raise UserError(f"{reason[len('UserError: '):]} (on {failed})") from err
    raise RankFailed(f"{failed} failed ({reason}); this rank stops too, last.pth is the last complete "
                     "checkpoint: fix the cause and continue with --resume auto") from err


def cleanup_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all ranks in place (no-op when not distributed)."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def broadcast_state(module: torch.nn.Module, src: int = 0, buffers_only: bool = False) -> None:
    """Copy rank ``src``'s buffers (and, unless ``buffers_only``, parameters) of ``module`` to every
    rank in place (no-op when not distributed). The trainers call it before a validation, so that
    every rank evaluates the model rank 0 checkpoints (BatchNorm running statistics included)."""
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return
    tensors = list(module.buffers()) if buffers_only else [*module.parameters(), *module.buffers()]
    with torch.no_grad():
        for tensor in tensors:
            dist.broadcast(tensor.data, src)


def from_rank0(value: object) -> object:
    """Rank 0's ``value`` on every rank (a decision every rank must share); ``value`` when not distributed."""
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def emulated_steps(gpus: int, world_size: int) -> int:
    """``--emulate-gpus N`` on ``world_size`` processes: the N / world_size GPUs each process plays
    (micro-batches per optimizer step). A count that does not divide is one line naming those that do."""
    if gpus <= 0:
        raise UserError(f"--emulate-gpus must be a positive integer, got {gpus}")
    if gpus % world_size:
        counts = ", ".join(str(p) for p in range(1, gpus + 1) if gpus % p == 0)
        raise UserError(f"--emulate-gpus {gpus} needs a number of processes that divides it ({counts}); "
                        f"this run has {world_size}")
    return gpus // world_size
