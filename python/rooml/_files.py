"""Atomic file output that honours the user's umask.

Every file rooml writes goes through :func:`atomic_output` (or :func:`publish` for a temporary file
made elsewhere): it is written under a temporary name in the target's directory and renamed into place
only when complete, with the permissions a plain ``open(path, "w")`` would give (``0o666 & ~umask``).
``tempfile.mkstemp`` creates 0600 files and ROOT creates 0644 files whatever the umask, hence the
explicit ``chmod``.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_output", "file_mode", "publish"]


def _current_umask() -> int:
    try:  # thread-safe: the kernel reports it (Linux >= 4.7)
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Permission bits of a new regular file under the current umask (``0o666 & ~umask``)."""
    return 0o666 & ~_current_umask()


def publish(tmp: str | os.PathLike, path: str | os.PathLike, overwrite: bool = True) -> Path:
    """Give ``tmp`` the umask's permissions and rename it to ``path`` atomically.

    Parameters
    ----------
    tmp : path-like
        A complete temporary file in the same directory as ``path``.
    path : path-like
        The final name.
    overwrite : bool
        When false, an existing ``path`` (even one created meanwhile) is never replaced.

    Raises
    ------
    FileExistsError
        ``path`` exists and ``overwrite`` is false.
    """
    tmp, path = Path(tmp), Path(path)
    os.chmod(tmp, file_mode())
    if overwrite:
        os.replace(tmp, path)
        return path
    try:  # link() refuses to clobber a file created meanwhile
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--force) to replace it") from None
    except OSError:  # no hard links on this file system
        if path.exists():
            raise FileExistsError(f"{path} exists; pass overwrite=True (--force) to replace it") from None
        os.replace(tmp, path)
    else:
        tmp.unlink()
    return path


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, overwrite: bool = True, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success publish it as ``path``, on failure remove it.

    Parameters
    ----------
    path : path-like
        The file to create.
    overwrite : bool
        Replace an existing ``path``; when false an existing file raises ``FileExistsError`` before any
        work is done and again (race-free) at the rename.
    suffix : str
        Ending of the temporary name (ROOT wants ``.root``, matplotlib infers the format from it).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_output(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text()
    'done'
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--force) to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if not tmp.is_file() or tmp.stat().st_size == 0:
            raise RuntimeError(f"nothing was written to {path}")
        publish(tmp, path, overwrite=overwrite)
    finally:
        tmp.unlink(missing_ok=True)
