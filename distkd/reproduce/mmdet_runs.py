"""Detection runs: mmengine work dirs (``<work_dir>/<config>.py`` and
``<work_dir>/<timestamp>/vis_data/scalars.json``, one JSON record per logged step; the
evaluation records hold ``coco/bbox_mAP`` as a fraction)."""
from __future__ import annotations

import json
import re
from pathlib import Path

from distkd.reproduce.dense_commands import DET_CONFIGS
from distkd.reproduce.paper import rows_of_table
from distkd.reproduce.runs import Run

_ROLE_OF_CONFIG = {
    Path(config).stem: (student, role) for student, configs in DET_CONFIGS.items() for role, config in configs.items()
}


def _int_setting(text: str, key: str) -> int | None:
    match = re.search(rf"\b{key}\s*=\s*(\d+)", text)
    return int(match.group(1)) if match else None


def _seed(config_text: str) -> int | None:
    match = re.search(r"randomness\s*=\s*dict\([^)]*\bseed\s*=\s*(\d+)", config_text)
    return int(match.group(1)) if match else None


def _evaluations(work_dir: Path) -> list[tuple[int, float]]:
    """``(epoch, box AP in percent)`` of every evaluation, over all (resumed) sessions."""
    points = {}
    for scalars in sorted(work_dir.glob("*/vis_data/scalars.json")):
        for line in scalars.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # torn last line of a crashed run
            if "coco/bbox_mAP" in record:
                step = record.get("epoch", record.get("step"))
                points[int(step)] = 100.0 * float(record["coco/bbox_mAP"])
    return sorted(points.items())


def load_mmdet_run(work_dir: Path) -> Run:
    configs = sorted(work_dir.glob("*.py"))
    config_text = configs[0].read_text() if configs else ""
    stem = configs[0].stem if configs else work_dir.name
    student, role = _ROLE_OF_CONFIG.get(stem, (stem, "baseline"))
    teacher_of = {row.student_model: row.teacher_model for row in rows_of_table("coco")}
    points = _evaluations(work_dir)
    total = _int_setting(config_text, "max_epochs")
    return Run(
        path=work_dir,
        name=work_dir.name,
        task="detection",
        dataset="coco",
        student=student,
        teacher=teacher_of.get(student) if role != "baseline" else None,
        kd=None if role == "baseline" else role,
        recipe="det",
        seed=_seed(config_text),
        total=total,
        done=points[-1][0] if points else None,  # mmengine counts epochs from 1
        best=max(ap for _, ap in points) if points else None,
        last=points[-1][1] if points else None,
    )


def find_mmdet_runs(root: Path) -> tuple[list[Run], list[str]]:
    work_dirs = sorted({scalars.parents[2] for scalars in root.rglob("vis_data/scalars.json")})
    runs, problems = [], []
    for work_dir in work_dirs:
        if (work_dir / "args.yaml").exists():
            continue
        try:
            runs.append(load_mmdet_run(work_dir))
        except (OSError, ValueError) as err:
            problems.append(f"cannot read detection run {work_dir}: {err}")
    return runs, problems
