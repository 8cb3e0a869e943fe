"""Properties of the repository as a whole: a small core with no trainer imports and no import
cycle, no private PyTorch API, no absolute machine paths."""
import ast
import re
import subprocess

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


def test_the_core_imports_no_trainer_or_tool():
    outside = ("classification", "segmentation", "detection", "tools", "reproduce", "benchmarks", "distkd_cli")
    found = {path: sorted(m for m in imports_of(path) if m.split(".")[0] in outside)
             for path in python_files("distkd")}
    assert not {k: v for k, v in found.items() if v}


def test_reproduce_uses_the_library_not_the_trainers():
    trainers = ("classification", "segmentation", "detection", "tools")
    found = {path: sorted(m for m in imports_of(path) if m.split(".")[0] in trainers)
             for path in python_files("reproduce")}
    assert not {k: v for k, v in found.items() if v}


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
