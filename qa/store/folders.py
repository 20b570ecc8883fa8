"""An index folder's path -> the folders a build writes through: a staging folder beside it (after removing those
of killed builds), the swap into place keeping the folder's mode, and one-line errors for a folder that cannot be
written. Used by the FAISS store's writer (`qa.store.faiss`)."""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import stat
import tempfile
import time
from pathlib import Path

from qa.errors import IndexUnwritable
from qa.store.checks import one_line

logger = logging.getLogger(__name__)

# A staging folder whose build was killed: its process is gone (or, named before names held it, an hour passed)
STALE_AFTER_S = 3600


def staging_folder(target: Path) -> Path:
    """A new, empty `.<name>.building-<pid>-*` folder beside `target`, stale ones removed first."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_staging(target)
        return Path(tempfile.mkdtemp(prefix=f".{target.name}.building-{os.getpid()}-", dir=target.parent))
    except OSError as exc:
        raise unwritable(target, exc) from exc


def unwritable(target: Path, exc: OSError) -> IndexUnwritable:
    """A one-line error for an index folder that cannot be written, naming it and the fix."""
    reason = " ".join(exc.strerror.split()) if isinstance(exc.strerror, str) and exc.strerror else one_line(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = f"free some space on the disk of {target.parent}, or choose another --index-dir"
    elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        fix = f"make {target.parent} writable for this user, or choose another --index-dir"
    else:
        fix = f"check that {target.parent} is writable and its disk has space, or choose another --index-dir"
    return IndexUnwritable(f"Cannot write the index at {target} ({reason}): {fix}. Any previous index there is kept.")


def folder_mode(target: Path, staging: Path) -> int:
    """The mode the index folder keeps: the old folder's (an operator's `chmod 755` stays), or that of any new
    folder here (umask applied), rather than mkdtemp's 0700."""
    if target.is_dir():
        return stat.S_IMODE(target.stat().st_mode)
    probe = staging / ".mode"
    probe.mkdir()
    mode = stat.S_IMODE(probe.stat().st_mode)
    probe.rmdir()
    return mode


def remove_stale_staging(target: Path) -> None:
    """Remove `.<name>.building-<pid>-*` and `.<name>.old-<pid>` folders whose process is gone (a `kill -9`d
    build), and older unnumbered staging folders after an hour. A running build's folders are left alone."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(?:building-(?:(\d+)-)?[\w.]*|old-(\d+))")
    for path in target.parent.iterdir():
        found = pattern.fullmatch(path.name)
        if found is None or not path.is_dir() or path.is_symlink():
            continue
        pid = found.group(1) or found.group(2)
        stale = not alive(int(pid)) if pid else time.time() - path.stat().st_mtime > STALE_AFTER_S
        if stale:
            logger.info("Removing %s, left by an interrupted build.", path)
            shutil.rmtree(path, ignore_errors=True)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's process, or a number that is no pid: leave its folder alone
    return True


def swap(staging: Path, target: Path) -> None:
    retired = target.parent / f".{target.name}.old-{os.getpid()}"
    if target.exists():
        os.replace(target, retired)
    os.replace(staging, target)
    shutil.rmtree(retired, ignore_errors=True)
