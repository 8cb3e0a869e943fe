"""The training loops' extension point: callbacks installed from DISTKD_CALLBACKS, called with a StepState."""
import pytest

from distkd.errors import UserError
from distkd_cli.callbacks import Callbacks, StepState


class Recorder:
    def __init__(self) -> None:
        self.seen = []

    def on_step_end(self, state: StepState) -> None:
        self.seen.append((state.epoch, state.iteration))


def test_factories_named_in_the_environment_are_installed_and_called(monkeypatch):
    monkeypatch.setenv("DISTKD_CALLBACKS", f"{__name__}:Recorder, tests.hooks:PauseAndFail")
    callbacks = Callbacks.from_env()
    assert [type(c).__name__ for c in callbacks.callbacks] == ["Recorder", "PauseAndFail"]
    callbacks.on_step_start(StepState(0, 0))  # Recorder has no on_step_start: skipped
    callbacks.on_step_end(StepState(1, 3))
    assert callbacks.callbacks[0].seen == [(1, 3)]


def test_none_installed_by_default(monkeypatch):
    monkeypatch.delenv("DISTKD_CALLBACKS", raising=False)
    assert Callbacks.from_env().callbacks == []


@pytest.mark.parametrize("name", ["no_such_module:Factory", f"{__name__}:NoSuchFactory"])
def test_a_bad_name_is_one_line(monkeypatch, name):
    monkeypatch.setenv("DISTKD_CALLBACKS", name)
    with pytest.raises(UserError, match=f"DISTKD_CALLBACKS: cannot load '{name}'.*give module:factory"):
        Callbacks.from_env()


def test_the_tests_pause_and_failure_callback(monkeypatch, tmp_path):
    from tests.hooks import PauseAndFail

    monkeypatch.setenv("DISTKD_TEST_FAIL_AT", "1:0:3")
    monkeypatch.setenv("DISTKD_TEST_PAUSE_AT", "0:2")
    monkeypatch.setenv("DISTKD_TEST_PAUSE_FILE", str(tmp_path / "pause"))
    hook = PauseAndFail()
    hook.on_step_start(StepState(0, 3, rank=0))
    with pytest.raises(RuntimeError, match="test failure injected on rank 1 at epoch 0 iteration 3"):
        hook.on_step_start(StepState(0, 3, rank=1))
    hook.on_step_end(StepState(0, 2, rank=0))  # no pause file: passes at once, marking the point reached
    assert (tmp_path / "pause.reached").read_text() == "0:2\n"
    (tmp_path / "pause").write_text("")
    hook.on_step_end(StepState(0, 2, rank=0, stop_requested=lambda: True))  # a signal ends the wait
