"""A resumed run's records hold every logged iteration once, even after a kill past the checkpoint."""
from segmentation.engine.records import Records


def rows(path):
    return [line.split(",")[0] for line in path.read_text().splitlines()[1:]]


def test_resume_drops_rows_logged_after_the_checkpoint(tmp_path):
    first = Records(tmp_path, is_main=True, fresh=True)
    first._append(first.train_csv, [1, 0.1, 2.0, 1.0, 1.0])
    first._append(first.train_csv, [2, 0.1, 2.0, 1.0, 1.0])
    first._append(first.train_csv, [3, 0.1, 2.0, 1.0, 1.0])  # logged, then killed before the next save
    first._append(first.val_csv, [2, 0.5, 0.9])
    first.close()
    resumed = Records(tmp_path, is_main=True, fresh=False, resumed_at=2)  # last.pth holds iteration 2
    resumed.close()
    assert rows(tmp_path / "train_log.csv") == ["1", "2"]
    assert rows(tmp_path / "metrics.csv") == ["2"]
