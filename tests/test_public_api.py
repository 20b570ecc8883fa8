from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import qa
from tests.conftest import ROOT


def test_all_is_sorted_and_complete() -> None:
    assert qa.__all__ == sorted(qa.__all__)
    public = {
        name
        for name, value in vars(qa).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name not in {"annotations", "logging"}
    }
    assert public == set(qa.__all__)


# The fronts of the stages: what tools (evaluation, benchmarks) may import besides `qa` itself. Every other module is
# the library's own business and may move.
FRONTS = (
    "qa",
    "qa.types",
    "qa.text",
    "qa.errors",
    "qa.embed",
    "qa.ingest",
    "qa.store",
    "qa.retrieve",
    "qa.decision",
    "qa.engines",
)
PAGE_FRONTS = ("qa", "qa.text", "qa.engines")  # what the page and the servers in ui/ may import


def imported_modules(path: Path) -> list[str]:
    """Every module `path` imports, and every name imported from one as "module.name" (at any depth of the file, so
    imports inside functions count too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
            found += [f"{node.module}.{alias.name}" for alias in node.names]  # `from pkg import module`
    return found


def _loaded_at_import(tree: ast.Module) -> list[ast.stmt]:
    """The module's top-level statements (and those in top-level try/if blocks), without `if TYPE_CHECKING:`."""
    nodes: list[ast.stmt] = []
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, (ast.If, ast.Try)):
            pending += [*node.body, *node.orelse, *getattr(node, "finalbody", [])]
            pending += [n for handler in getattr(node, "handlers", []) for n in handler.body]
        nodes.append(node)
    return nodes


def module_imports(path: Path, modules: Iterable[str]) -> list[str]:
    """The modules among `modules` that `path` imports when it loads: `from pkg import module` imports the module
    (its package is already loading when a sibling does this), `from module import name` the module."""
    known = set(modules)
    found = []
    for node in _loaded_at_import(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name in known]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            submodules = [f"{node.module}.{alias.name}" for alias in node.names]
            found += [m for m in submodules if m in known]
            if node.module in known and not all(m in known for m in submodules):
                found.append(node.module)
    return found


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_consumers_use_only_public_api() -> None:
    for path in (ROOT / "ui").rglob("*.py"):
        deep = [m for m in imported_modules(path) if m.startswith("qa.") and not _is_name_of_front(m, PAGE_FRONTS)]
        assert not deep, (path, deep)


def _is_module(name: str) -> bool:
    """Whether `name` is a module of a package (not a name defined in a module)."""
    parent = importlib.util.find_spec(name.rsplit(".", 1)[0])
    return parent is not None and parent.submodule_search_locations is not None and bool(importlib.util.find_spec(name))


def _is_name_of_front(name: str, fronts: tuple[str, ...]) -> bool:
    """`name` is a front, or a name imported from one (`from qa.text import MARKER` gives "qa.text.MARKER")."""
    return name in fronts or (name.rsplit(".", 1)[0] in fronts and not _is_module(name))


def test_the_library_never_imports_its_tools_or_its_page() -> None:
    tools = ("qa.evaluation", "qa.bench", "qa.training", "ui")
    for path in (ROOT / "qa").rglob("*.py"):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith(("qa/cli/", "qa/evaluation/", "qa/bench/", "qa/training/")):
            continue
        bad = [
            m for m in imported_modules(path) if m == "ui" or m.startswith(tuple(t + "." for t in tools)) or m in tools
        ]
        assert not bad, f"{relative} imports {bad}"


def test_only_the_serve_commands_import_the_page() -> None:
    for path in (ROOT / "qa" / "cli").rglob("*.py"):
        page = [m for m in imported_modules(path) if m == "ui" or m.startswith("ui.")]
        assert not page or path.name == "serve.py", (path, page)


def test_tools_use_only_the_fronts() -> None:
    """qa.evaluation, qa.bench and qa.training import the fronts (FRONTS) or each other, no other module of the
    library."""
    for package in ("evaluation", "bench", "training"):
        for path in (ROOT / "qa" / package).rglob("*.py"):
            deep = [
                m
                for m in imported_modules(path)
                if m.startswith("qa.") and not m.startswith(("qa.evaluation", "qa.bench", "qa.training"))
                and not _is_name_of_front(m, FRONTS)
            ]  # fmt: skip
            assert not deep, f"{path.relative_to(ROOT)} reaches into {deep}"


def test_the_import_graph_has_no_cycle() -> None:
    """Module-level imports among qa's modules (and ui's) form no cycle: data flows one way."""
    paths = [*(ROOT / "qa").rglob("*.py"), *(ROOT / "ui").rglob("*.py")]
    modules = {module_name(path): path for path in paths}
    graph = {name: set(module_imports(path, modules)) - {name} for name, path in modules.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph[name]):
            assert state.get(target) != 1, "import cycle: " + " -> ".join([*trail, name, target])
            if target not in state:
                visit(target, [*trail, name])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


def test_help_loads_neither_the_tools_nor_the_page() -> None:
    code = (
        "import sys; from qa.cli import cli; "
        "print(sorted(m for m in sys.modules if m.startswith(('qa.evaluation', 'qa.bench', 'ui', 'gradio'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]"


def test_choices_defined_by_the_tools_are_read_from_them() -> None:
    from click.testing import CliRunner

    from qa.bench.stats import SECTIONS
    from qa.cli import cli
    from qa.evaluation.plan import SPLITS

    runner = CliRunner()
    bench = runner.invoke(cli, ["bench", "--only", "nope"])
    assert bench.exit_code == 2 and all(section in bench.output for section in SECTIONS)
    evaluate = runner.invoke(cli, ["eval", "--split", "nope"])
    assert evaluate.exit_code == 2 and all(split in evaluate.output for split in SPLITS)


def test_library_never_prints() -> None:
    for path in (ROOT / "qa").rglob("*.py"):
        assert not re.search(r"^\s*print\(", path.read_text(encoding="utf-8"), re.M), path


def test_no_pickle_anywhere() -> None:
    for path in [*(ROOT / "qa").rglob("*.py"), *(ROOT / "ui").rglob("*.py")]:
        code = path.read_text(encoding="utf-8")
        assert not re.search(
            r"^\s*(import|from) (c?pickle|joblib)\b|pickle\.(loads?|dumps?)\(|"
            r"allow_dangerous_deserialization\s*=\s*True|allow_pickle\s*=\s*True",
            code,
            re.M,
        ), path


def test_import_qa_and_help_work_without_optional_extras() -> None:
    code = (
        "import sys; sys.modules['gradio'] = None; sys.modules['llama_cpp'] = None; "
        "sys.modules['matplotlib'] = None; import qa, qa.cli; print(qa.__all__[0])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stderr
    help_text = subprocess.run(
        [sys.executable, "-m", "qa", "--help"], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert help_text.returncode == 0 and "ask" in help_text.stdout


def test_prompts_are_found_from_any_working_directory(tmp_path: Path) -> None:
    templates = importlib.import_module("qa.templates")
    code = "from qa.templates import load_prompt; print(len(load_prompt('answer')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert result.returncode == 0 and int(result.stdout) > 0, result.stderr
    assert templates.load_prompt("answer") == (ROOT / "prompts" / "answer.txt").read_text(encoding="utf-8")


def test_error_names_in_the_readme_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    line = next(line for line in readme.splitlines() if "qa.QAError` subclasses" in line)
    following = readme[readme.index(line) : readme.index(line) + 300]
    names = re.findall(r"`([A-Z][A-Za-z]+)`", following)
    assert names and all(hasattr(qa, name) for name in names), names
