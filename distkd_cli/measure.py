"""Measuring, for the benchmarks and the GPU check (`benchmarks/`): a header naming the machine, the peak
memory of a call, and sizes given on the command line."""
from __future__ import annotations

import datetime
import os
import platform
from collections.abc import Callable

import torch


def parse_shape(text: str) -> torch.Size:
    """``'8x19x128x256'`` -> ``torch.Size([8, 19, 128, 256])``."""
    try:
        dims = [int(d) for d in text.lower().split("x")]
    except ValueError:
        raise SystemExit(f"bad size '{text}': expected dimensions joined by 'x', e.g. 256x1000") from None
    if len(dims) < 2 or min(dims) < 1:
        raise SystemExit(f"bad size '{text}': need at least (N, C), all positive")
    return torch.Size(dims)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_header(device: torch.device) -> str:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if device.type == "cuda":
        where = torch.cuda.get_device_name(device)
    else:
        where = f"{cpu_model()}, {os.cpu_count()} logical CPUs, torch threads {torch.get_num_threads()}"
    return f"# {now} | torch {torch.__version__} | {device.type}: {where}"


def peak_bytes(fn: Callable[[], object], device: torch.device) -> int:
    """Peak memory allocated while ``fn`` runs, from the allocator's own records.

    CPU: ``torch.profiler`` with ``profile_memory=True`` records every allocation and free of the CPU
    allocator (``[memory]`` events with signed sizes); their running sum in time order is the live
    total, its maximum the peak. CUDA: ``torch.cuda.max_memory_allocated`` above the baseline.
    Tensors that exist before the call (inputs) do not count.
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - base
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    live = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        live += event.nbytes()
        peak = max(peak, live)
    return peak
