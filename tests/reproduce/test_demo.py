"""The digits demo (tools/demo.py, reproduce/demo.py) at reduced size."""
import pytest

import reproduce.demo as demo
from distkd.errors import UserError


@pytest.mark.slow
def test_demo_runs_end_to_end_reproducibly_resumes_and_never_deletes_silently(tmp_path, monkeypatch):
    small = ["--epochs", "1", "--student-epochs", "1", "--seeds", "2", "--max-iters-per-epoch", "2",
             "--output", str(tmp_path), "--teacher", "cifar_resnet14", "--student", "cifar_resnet8"]
    real_train = demo.train_main

    def interrupted_at_the_kd_students(argv):
        if "student_kd_s0" in argv:
            raise KeyboardInterrupt
        return real_train(argv)

    monkeypatch.setattr(demo, "train_main", interrupted_at_the_kd_students)
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C during the first KD student
        demo.main(small)
    monkeypatch.setattr(demo, "train_main", real_train)
    with pytest.raises(UserError, match="holds an earlier demo .* --resume auto, start again with --overwrite"):
        demo.main(small)  # never started over silently
    table = demo.main(small + ["--resume", "auto"])  # continues: the teacher and baselines are kept
    assert len(table.splitlines()) == 6  # header, rule, teacher + 3 students
    assert all(line.endswith("| 2 |") for line in table.splitlines()[3:])  # mean ± std over 2 seeds
    assert (tmp_path / "student_dist_s1" / "teacher.yaml").is_file()
    assert (tmp_path / "demo_results.png").stat().st_size > 1000
    assert (tmp_path / "demo_results.md").read_text().strip() == table
    with pytest.raises(UserError, match="was started with other options .*epochs 1 -> 2"):
        demo.main([*small, "--resume", "auto", "--student-epochs", "2"])
    assert demo.main(small + ["--overwrite"]) == table  # from scratch: the same table, digit for digit
