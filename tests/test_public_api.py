from __future__ import annotations

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
    public = {name for name, value in vars(qa).items()
              if not name.startswith("_") and not inspect.ismodule(value) and name not in {"annotations", "logging"}}
    assert public == set(qa.__all__)


def test_consumers_use_only_public_api() -> None:
    for path in (ROOT / "ui").rglob("*.py"):
        assert not re.search(r"^\s*(from|import) qa\.", path.read_text(encoding="utf-8"), re.M), path


def test_library_never_prints() -> None:
    for path in (ROOT / "qa").rglob("*.py"):
        assert not re.search(r"^\s*print\(", path.read_text(encoding="utf-8"), re.M), path


def test_no_pickle_anywhere() -> None:
    for path in [*(ROOT / "qa").rglob("*.py"), *(ROOT / "ui").rglob("*.py")]:
        code = path.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(import|from) (c?pickle|joblib)\b|pickle\.(loads?|dumps?)\(|"
                             r"allow_dangerous_deserialization\s*=\s*True|allow_pickle\s*=\s*True", code, re.M), path


def test_import_qa_and_help_work_without_optional_extras() -> None:
    code = ("import sys; sys.modules['gradio'] = None; sys.modules['llama_cpp'] = None; "
            "sys.modules['matplotlib'] = None; import qa, qa.cli; print(qa.__all__[0])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stderr
    help_text = subprocess.run([sys.executable, "-m", "qa", "--help"], capture_output=True, text=True, cwd=ROOT,
                               check=False)
    assert help_text.returncode == 0 and "ask" in help_text.stdout


def test_prompts_are_found_from_any_working_directory(tmp_path: Path) -> None:
    templates = importlib.import_module("qa.templates")
    code = "from qa.templates import load_prompt; print(len(load_prompt('answer')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert result.returncode == 0 and int(result.stdout) > 0, result.stderr
    assert templates.load_prompt("answer") == (ROOT / "prompts" / "answer.txt").read_text(encoding="utf-8")
