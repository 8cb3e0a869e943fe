"""How far ``tools/train.py``'s options travel: through at most half the files they crossed before
the typed run configuration (issue 26).

The measure, by AST, on the non-test files: start at ``tools/train.py`` and follow every import of
the project's packages (top-level and inside functions, ``if TYPE_CHECKING`` ones too); of those
files, count each that has a function (or method) with a parameter that carries the parsed options:
annotated with ``argparse.Namespace`` or with a class of an options module (``*/options.py``: the
whole configuration or one of its option groups), or, unannotated, named ``args``. ``self`` of
the option classes' own methods does not count; values taken out of a group (``optim.lr``) and
passed on do not either: a function that receives them no longer depends on the options' shape.
"""
from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGES = ("classification", "segmentation", "detection", "distkd", "distkd_cli", "reproduce")
MAIN_FILES = 10  # the same measure on main at 86468f7, before the typed configuration:
# classification/{accumulation,config,scheduler,tracking,train}.py, classification/data/{loaders,transforms}.py,
# classification/teacher_store/replay.py, distkd/utils/experiment.py, distkd_cli/config.py


def _module_file(root: Path, name: str) -> Path | None:
    parts = name.split(".")
    if parts[0] not in PACKAGES:
        return None
    for candidate in (root.joinpath(*parts).with_suffix(".py"), root.joinpath(*parts, "__init__.py")):
        if candidate.is_file():
            return candidate
    return None


def _imports(root: Path, path: Path) -> set[Path]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            found.update(f for i in range(1, len(parts) + 1) if (f := _module_file(root, ".".join(parts[:i]))))
    return found


def _reachable(root: Path, start: Path) -> set[Path]:
    seen, todo = set(), [start]
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend(_imports(root, path) - seen)
    return seen


def _option_types(root: Path) -> set[str]:
    names = {"Namespace"}
    for path in root.glob("*/options.py"):
        names |= {n.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ClassDef)}
    return names


def _names(annotation: ast.expr) -> set[str]:
    found = set()
    for node in ast.walk(annotation):
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):  # a string annotation
            found |= set(node.value.replace("|", " ").replace(".", " ").split())
    return found


def _carries_options(path: Path, types: set[str]) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            params = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
            for arg in params:
                if arg.annotation is None and arg.arg == "args" or arg.annotation and _names(arg.annotation) & types:
                    return True
    return False


def files_the_options_cross(root: Path = ROOT) -> list[str]:
    """The measure of the module docstring, as sorted paths relative to ``root``."""
    types = _option_types(root)
    files = _reachable(root, root / "tools" / "train.py")
    return sorted(str(f.relative_to(root)) for f in files if "tests" not in f.parts and _carries_options(f, types))


def test_the_options_of_tools_train_cross_at_most_half_the_files_they_did():
    crossed = files_the_options_cross()
    assert len(crossed) <= MAIN_FILES // 2, crossed


def test_the_measure_sees_a_namespace_parameter(tmp_path):
    (tmp_path / "tools").mkdir()
    (tmp_path / "classification").mkdir()
    (tmp_path / "tools" / "train.py").write_text("from classification import a\n")
    (tmp_path / "classification" / "__init__.py").write_text("")
    (tmp_path / "classification" / "a.py").write_text("import argparse\nfrom classification import b\n"
                                                      "def f(x: argparse.Namespace): ...\n")
    (tmp_path / "classification" / "b.py").write_text("def g(args): ...\ndef h(lr: float): ...\n")
    assert files_the_options_cross(tmp_path) == ["classification/a.py", "classification/b.py"]
