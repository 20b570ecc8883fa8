from __future__ import annotations

import ast
import importlib
import inspect
import re
import subprocess
import sys
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


def test_consumers_use_only_public_api() -> None:
    for path in (ROOT / "ui").rglob("*.py"):
        assert not re.search(r"^\s*(from|import) qa\.", path.read_text(encoding="utf-8"), re.M), path


def imported_modules(path: Path) -> list[str]:
    """Every module `path` imports (at any depth of the file, so imports inside functions count too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
    return found


def test_the_library_never_imports_its_tools_or_its_page() -> None:
    tools = ("qa.evaluation", "qa.bench", "ui")
    for path in (ROOT / "qa").rglob("*.py"):
        relative = path.relative_to(ROOT).as_posix()
        if relative == "qa/cli.py" or relative.startswith(("qa/evaluation/", "qa/bench/")):
            continue
        bad = [
            m for m in imported_modules(path) if m == "ui" or m.startswith(tuple(t + "." for t in tools)) or m in tools
        ]
        assert not bad, f"{relative} imports {bad}"


def test_tools_use_only_what_qa_exports() -> None:
    """qa.evaluation and qa.bench import `from qa import ...` (exported names) or each other, nothing deeper."""
    for package in ("evaluation", "bench"):
        for path in (ROOT / "qa" / package).rglob("*.py"):
            deep = [
                m
                for m in imported_modules(path)
                if m.startswith("qa.") and not m.startswith(("qa.evaluation", "qa.bench"))
            ]
            assert not deep, f"{path.relative_to(ROOT)} reaches into {deep}"


def test_help_loads_neither_the_tools_nor_the_page() -> None:
    code = (
        "import sys; from qa.cli import cli; "
        "print(sorted(m for m in sys.modules if m.startswith(('qa.evaluation', 'qa.bench', 'ui', 'gradio'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]"


def test_bench_sections_listed_by_the_cli_are_the_benchmarks() -> None:
    from qa.bench.stats import SECTIONS
    from qa.cli import BENCH_SECTIONS

    assert BENCH_SECTIONS == SECTIONS


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
