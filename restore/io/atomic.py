"""File-system helpers: listing inputs, mapping outputs, atomic writing.

Every output of ``restore`` is written to a temporary file in the destination
directory and then moved into place with :func:`os.replace`, so a crash, a
full disk or a Ctrl-C never leaves a half-written image under the final name
(and never destroys an existing file that was about to be replaced).

Temporary files are named ``.<name>.<random>.tmp<ext>``: hidden (so
:func:`restore.io.list_images` skips them) and ending in the real extension
(so writers that pick the format from the file name, such as
``cv2.imwrite``, still work).
"""
from __future__ import annotations

import glob
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Union

PathLike = Union[str, "os.PathLike[str]"]

#: Extensions (lower case, with the dot) that ``list_images`` picks up from folders.
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy"})

__all__ = ["IMAGE_EXTENSIONS", "atomic_write", "atomic_write_bytes", "atomic_write_text",
           "safe_output_path", "list_images"]


def _current_umask() -> int:
    """The process umask, read without changing it where the OS allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # no read-only API elsewhere: set and restore
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write(
    path: PathLike,
    writer: Callable[[str], None],
    *,
    overwrite: bool = True,
    fsync: bool = False,
) -> Path:
    """Create ``path`` atomically: ``writer(tmp_path)`` writes the content to
    a temporary file in the same directory, which then replaces ``path``.

    If ``writer`` raises, the temporary file is removed, ``path`` is left
    exactly as it was and the exception propagates.  With
    ``overwrite=False`` an existing ``path`` raises :class:`FileExistsError`
    (checked atomically via a hard link where the file system supports it).
    ``fsync=True`` flushes the data to disk before the rename.  The new file
    gets the permissions of the file it replaces, or the usual
    ``0o666 & ~umask`` for a new file.  Returns ``Path(path)``.
    """
    dest = Path(os.fspath(path))
    if not overwrite and dest.exists():
        raise FileExistsError(f"{dest}: already exists (pass overwrite=True to replace it)")
    parent = dest.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=f".tmp{dest.suffix}", dir=parent)
    os.close(fd)
    try:
        writer(tmp)
        if not os.path.exists(tmp):
            raise OSError(f"{dest}: the writer did not create the temporary file {tmp}")
        try:
            mode = os.stat(dest).st_mode & 0o7777
        except OSError:
            mode = 0o666 & ~_UMASK
        os.chmod(tmp, mode)
        if fsync:
            _fsync_file(tmp)
        if overwrite:
            os.replace(tmp, dest)
        else:
            _move_no_clobber(tmp, dest)
        if fsync:
            _fsync_dir(parent)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return dest


def _move_no_clobber(tmp: str, dest: Path) -> None:
    try:
        os.link(tmp, dest)  # fails with FileExistsError if dest appeared meanwhile
    except FileExistsError:
        raise FileExistsError(f"{dest}: already exists (pass overwrite=True to replace it)") from None
    except OSError:  # no hard links on this file system: check-then-replace
        if dest.exists():
            raise FileExistsError(f"{dest}: already exists (pass overwrite=True to replace it)") from None
        os.replace(tmp, dest)
        return
    os.unlink(tmp)


def _fsync_file(name: str) -> None:
    fd = os.open(name, os.O_RDWR if os.name == "nt" else os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    if os.name == "nt":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: PathLike, data: bytes, *, overwrite: bool = True, fsync: bool = False) -> Path:
    """Atomically write ``data`` (bytes-like) to ``path``."""

    def _writer(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)

    return atomic_write(path, _writer, overwrite=overwrite, fsync=fsync)


def atomic_write_text(
    path: PathLike, text: str, *, encoding: str = "utf-8", overwrite: bool = True, fsync: bool = False
) -> Path:
    """Atomically write ``text`` to ``path`` (newlines are written as given)."""

    def _writer(tmp: str) -> None:
        with open(tmp, "w", encoding=encoding, newline="") as fh:
            fh.write(text)

    return atomic_write(path, _writer, overwrite=overwrite, fsync=fsync)


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)  # hard links, case-insensitive file systems
    except OSError:
        return False


def safe_output_path(
    input_path: PathLike, out_dir: PathLike, suffix: str = "", *, ext: str | None = None
) -> Path:
    """Map an input file to ``out_dir / (stem + suffix + ext)``.

    ``ext`` defaults to the input's extension (give e.g. ``".tif"`` to change
    the format; the leading dot is optional).  Raises :class:`ValueError` if
    the result would be the input file itself (same path after resolving
    ``..`` and symlinks, or a hard link to it): an input is never
    overwritten.  ``out_dir`` is not created.
    """
    src = Path(os.fspath(input_path))
    if ext is None:
        ext = src.suffix
    elif ext and not ext.startswith("."):
        ext = "." + ext
    name = f"{src.stem}{suffix}{ext}"
    if not src.stem or name in (".", "..") or os.sep in name or (os.altsep and os.altsep in name):
        raise ValueError(f"{src}: cannot derive an output file name from it (suffix={suffix!r}, ext={ext!r})")
    out = Path(os.fspath(out_dir)) / name
    if _same_file(src, out):
        raise ValueError(
            f"{src}: the output path {out} is the input file itself — "
            "choose another output folder or pass a suffix"
        )
    return out


def list_images(inputs: Union[PathLike, Iterable[PathLike]], recursive: bool = True, *,
                extensions: Iterable[str] | None = None) -> list[Path]:
    """Expand files, folders and glob patterns into a sorted, de-duplicated list.

    Folders contribute files whose extension is in ``extensions`` (default
    ``IMAGE_EXTENSIONS``; ``restore denoise`` adds the RAW ones)
    (any case), recursively unless ``recursive=False``, skipping hidden
    files and folders (names starting with '.', e.g. temp files of an
    ongoing write).  Glob matches are filtered the same way.  Paths given
    explicitly are always kept, even with another extension or when missing,
    so that :func:`read_image` can report them.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    exts = frozenset(e.lower() for e in extensions) if extensions is not None else IMAGE_EXTENSIONS
    found: dict[str, Path] = {}

    def add(path: Path) -> None:
        found.setdefault(os.path.normcase(os.path.abspath(path)), path)

    def add_folder(folder: Path) -> None:
        for root, dirs, files in os.walk(folder):
            dirs[:] = [d for d in dirs if not d.startswith(".")] if recursive else []
            for name in files:
                if not name.startswith(".") and os.path.splitext(name)[1].lower() in exts:
                    add(Path(root) / name)

    for item in inputs:
        s = os.fspath(item)
        p = Path(s)
        if p.is_dir():
            add_folder(p)
        elif p.exists() or not any(c in s for c in "*?["):
            add(p)
        else:
            for m in glob.glob(s, recursive=True):
                mp = Path(m)
                if mp.is_dir():
                    add_folder(mp)
                elif not mp.name.startswith(".") and mp.suffix.lower() in exts:
                    add(mp)
    return sorted(found.values(), key=lambda q: (str(q.parent), q.name))
