"""Properties of the repository as a whole: layered imports with no cycle, a small core, short files and
simple functions, no private PyTorch API, no absolute machine paths."""
import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

CODE_DIRS = ("distkd", "distkd_cli", "classification", "segmentation", "detection", "reproduce", "tools", "benchmarks")
PRIVATE_TORCH = re.compile(
    r"_set_params_and_buffers"  # DDP's private ignore list
    r"|\btorch(?:\.\w+)*\._(?!_)\w"  # torch._dynamo, torch.nn.modules.module._global_..., torch.Tensor._x
    r"|\._C\b|\baten\._"  # the C++ bindings and private ATen ops
    r"|\bfrom torch[\w.]* import (?:.*[ ,(])?_(?!_)\w"  # a private name imported from torch
    r"|\b(?:DistributedDataParallel|nn\.Module|nn\.\w+)\._(?!_)\w"  # private attributes of torch classes
)


def tracked(*patterns: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", *patterns], cwd=ROOT, capture_output=True, text=True, check=True)
    return out.stdout.split()


def python_files(*dirs: str) -> list[str]:
    return [f for f in tracked(*dirs) if f.endswith(".py")]


@pytest.fixture(scope="module", autouse=True)
def _needs_git():
    try:
        tracked("README.md")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")


def imports_of(path: str) -> set[str]:
    """Every module imported anywhere in ``path`` (top level and inside functions)."""
    tree = ast.parse((ROOT / path).read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_private_pytorch_api_in_project_code():
    found = [f"{path}:{n}: {line.strip()}" for path in python_files(*CODE_DIRS)
             for n, line in enumerate((ROOT / path).read_text().splitlines(), 1) if PRIVATE_TORCH.search(line)]
    assert not found, "private PyTorch API:\n" + "\n".join(found)


@pytest.mark.parametrize("line", [
    "DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(m, names)",
    "torch._dynamo.reset()", "x = torch.nn.modules.module._global_forward_hooks", "torch._C._get_tracing_state()",
    "torch.ops.aten._foo(x)", "from torch.ao.quantization.fuser_method_mappings import _reverse2",
    "nn.Module._apply(m, fn)",
])
def test_the_private_api_pattern_catches_known_forms(line):
    assert PRIVATE_TORCH.search(line)


@pytest.mark.parametrize("line", ["torch.__version__", "self._wrapped = {}", "torch.nn.functional.relu(x)"])
def test_the_private_api_pattern_leaves_public_code_alone(line):
    assert not PRIVATE_TORCH.search(line)


# The layers, lowest first: a module imports its own package and the packages of lower layers, never
# one of its own layer or above. The tests import anything; nothing imports the tests.
LAYERS = {
    "distkd": 0,  # the library: losses, KD registry, Distiller, utilities (torch alone)
    "distkd_cli": 1,  # the command-line layer and what the tasks and tools share (downloads, recipes)
    "classification": 2, "segmentation": 2, "detection": 2,  # the tasks: none imports another
    "reproduce": 3,  # the paper's tables: commands, sweeps, reports, the demo
    "tools": 4, "benchmarks": 4,  # entry points: imported by nothing (but the tests)
}
# reproduce plans, runs and reports through the library; these entry points of it read a trainer's
# options (the sweep's check of changed options) or run the trainer in-process (the demo).
REPRODUCE_ENTRY_POINTS = {"reproduce/cli.py", "reproduce/demo.py"}
TASKS = ("classification", "segmentation", "detection")


def layer_violations(path: str, imports: set[str]) -> list[str]:
    """The imports of ``path`` that break the layering of :data:`LAYERS`."""
    package = path.split("/")[0]
    if package == "tests":
        return []
    found = []
    for module in sorted(imports):
        top = module.split(".")[0]
        if top == "tests" or (top in LAYERS and top != package and LAYERS[top] >= LAYERS[package]):
            found.append(module)
    return found


def test_imports_follow_the_layers():
    """distkd < distkd_cli < {classification, segmentation, detection} < reproduce < {tools, benchmarks}:
    no upward or sideways import, and nothing outside the tests imports the tests."""
    found = {path: v for path in python_files(*CODE_DIRS) if (v := layer_violations(path, imports_of(path)))}
    assert not found, found


@pytest.mark.parametrize("path, imports", [
    ("distkd/x.py", {"distkd_cli.run"}), ("distkd_cli/x.py", {"classification.train"}),
    ("classification/x.py", {"reproduce.paper"}), ("classification/x.py", {"segmentation.config"}),
    ("benchmarks/x.py", {"tests.detection.tiny"}), ("reproduce/x.py", {"tools.report"}),
    ("classification/x.py", {"benchmarks.common"}),
])
def test_the_layer_rule_catches_known_forms(path, imports):
    assert layer_violations(path, imports)


def test_the_layer_rule_allows_downward_imports():
    assert not layer_violations("reproduce/x.py", {"distkd.errors", "distkd_cli.download", "classification.config"})
    assert not layer_violations("tests/x.py", {"tools", "benchmarks.gpu_check", "tests.conftest"})


def test_reproduce_uses_the_library_not_the_trainers():
    found = {path: sorted(m for m in imports_of(path) if m.split(".")[0] in TASKS)
             for path in python_files("reproduce") if path not in REPRODUCE_ENTRY_POINTS}
    assert not {k: v for k, v in found.items() if v}
    assert all((ROOT / path).is_file() for path in REPRODUCE_ENTRY_POINTS)


# tools/ holds reproduce.py, which shadows the reproduce package for a script run from tools/ (Python
# puts the script's folder first on sys.path): the tools that import the package leave that folder out.
SHADOWED_BY_TOOLS_REPRODUCE = {"tools/reproduce.py", "tools/report.py", "tools/demo.py"}


def test_no_sys_path_edits():
    """The package is installed (README: ``pip install -e .``): no code adds a folder to ``sys.path``.
    ``gpu_check_fork.py`` sets ``sys.path[0]`` of the scripts it runs, as the interpreter does."""
    adds = re.compile(r"\bsys\.path\.(?:insert|append|extend)\b|\bsys\.path\s*(?:\+=|=[^=])")
    found = [f"{path}:{n}" for path in python_files(*CODE_DIRS) if path != "benchmarks/gpu_check_fork.py"
             for n, line in enumerate((ROOT / path).read_text().splitlines(), 1) if adds.search(line)]
    assert not found, found
    drops = {path for path in python_files(*CODE_DIRS) if "sys.path[:] = " in (ROOT / path).read_text()}
    assert drops == SHADOWED_BY_TOOLS_REPRODUCE


@pytest.mark.parametrize("package", ["distkd", "distkd_cli", "reproduce"])
def test_no_import_cycle(package):
    modules = {p[:-3].replace("/", ".").removesuffix(".__init__"): p for p in python_files(package)}
    graph = {}
    for module, path in modules.items():
        deps = set()
        for name in imports_of(path):
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module and not module.startswith(name + "."):  # a package's own __init__
                deps.add(name)
        graph[module] = deps
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        if state.get(node) == 1:
            raise AssertionError("import cycle: " + " -> ".join(trail[trail.index(node):] + [node]))
        if state.get(node) == 2:
            return
        state[node] = 1
        for dep in sorted(graph[node]):
            visit(dep, trail + [node])
        state[node] = 2

    for node in sorted(graph):
        visit(node, [])


def code_lines(source: str) -> int:
    """Lines holding code: not blank, not only a comment, not part of a docstring."""
    tree = ast.parse(source)
    docs = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            docs.update(range(body[0].lineno, body[0].end_lineno + 1))
    return sum(1 for n, line in enumerate(source.splitlines(), 1)
               if n not in docs and line.strip() and not line.strip().startswith("#"))


def test_code_lines_skip_docstrings_comments_and_blanks():
    assert code_lines('"""doc\nmore"""\n\n# note\ndef f():\n    """doc"""\n    return 1  # x\n') == 2


def test_the_core_stays_small():
    """The library a user imports, ~1,200 lines of code; docstrings (the equations, the formats, the
    contract) do not count, a ceiling on physical lines keeps them concise."""
    sources = [(ROOT / p).read_text() for p in python_files("distkd")]
    code, physical = sum(map(code_lines, sources)), sum(len(s.splitlines()) for s in sources)
    assert code <= 1200, f"distkd/ has {code} lines of code (the issue asks for ~1,200)"
    # 1550 until issue 23 brought DKD, logit standardisation, the KD contract and the kd configuration
    # into the core (their equations and the authors' conventions are documented where they are coded).
    assert physical <= 1800, f"distkd/ has {physical} lines with docstrings and comments"


def test_no_absolute_machine_paths():
    pattern = re.compile(r"(?<![\w.~])/(?:work|root|home|tmp)/")
    found = []
    for path in tracked():
        if path.startswith("tests/") or not (ROOT / path).is_file():
            continue  # tests create their temporary folders with tmp_path
        try:
            text = (ROOT / path).read_text()
        except UnicodeDecodeError:
            continue
        found += [f"{path}:{n}" for n, line in enumerate(text.splitlines(), 1) if pattern.search(line)]
    assert not found, found


# The shape targets of issue 26: no file over 300 lines outside the tests, no function over cyclomatic
# complexity 12 (ruff's C901).
MAX_LINES, MAX_COMPLEXITY = 300, 12


def test_no_file_over_300_lines_outside_the_tests():
    lengths = {path: len((ROOT / path).read_text().splitlines()) for path in python_files(*CODE_DIRS)}
    long = {path: n for path, n in lengths.items() if n > MAX_LINES}
    assert not long, long


def ruff_command() -> list[str]:
    if shutil.which("ruff"):
        return ["ruff"]
    try:
        import ruff  # noqa: F401
    except ImportError:
        pytest.skip("ruff is not installed (requirements.txt pins it)")
    return [sys.executable, "-m", "ruff"]


def test_no_function_over_complexity_12():
    """ruff's C901 (McCabe) on every code folder, without the per-file ignores of pyproject.toml."""
    out = subprocess.run([*ruff_command(), "check", "--isolated", "--select", "C901", "--config",
                          f"lint.mccabe.max-complexity={MAX_COMPLEXITY}", "--output-format", "json", *CODE_DIRS],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode in (0, 1), out.stderr
    found = {f"{Path(d['filename']).resolve().relative_to(ROOT)}:{d['message'].split('`')[1]}": d["message"]
             for d in json.loads(out.stdout)}
    assert not found, found


def test_ruff_checks_c901_everywhere():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    lint = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]
    assert "C901" in lint["select"] and lint["mccabe"]["max-complexity"] == MAX_COMPLEXITY
    ignored = {path for path, codes in lint.get("per-file-ignores", {}).items() if "C901" in codes}
    assert not ignored, ignored
