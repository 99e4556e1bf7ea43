"""Results files and folders that appear whole or not at all.

Writing a file in place truncates it first: a run killed (Ctrl-C, an out-of-memory kill, a
cluster pre-empting the job) while `results.json`, `snapshots.json` or a plot is being written
leaves a truncated file where a good one was, and a policy folder killed between its weights and
its `policy.json` is half a policy. Everything here writes to a hidden temporary name beside the
target (same folder, so same filesystem), fsyncs it, and renames it over the target
(`os.replace`, atomic on POSIX): a reader, or the next run, sees the old version or the new one.
A kill leaves at most a stray `.<name>.*.part` file or folder, which nothing reads.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

PART_SUFFIX = ".part"


def _temporary_name(path: str | os.PathLike, suffix: str = PART_SUFFIX) -> str:
    """A fresh hidden name beside `path`: `.<name>.<random>.part`."""
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{name}.{uuid.uuid4().hex[:12]}{suffix}")


class PendingFile:
    """A new file that becomes `path` only on `commit()`; until then it is a hidden temporary
    file beside `path` (opened for binary writing as `.file`), and `discard()` removes it.

    It gets the mode of the file it replaces, or, for a new one, the permissions the umask
    gives any new file (mkstemp's would be 0600)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        self.tmp = _temporary_name(self.path)
        fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with contextlib.suppress(FileNotFoundError):
            os.fchmod(fd, stat.S_IMODE(os.stat(self.path).st_mode))
        self.file: IO[bytes] = os.fdopen(fd, "wb")

    def commit(self) -> None:
        """Flush and fsync the data (so that the rename never lands an empty file, even after
        a power cut), then rename it over `path`; if any of that fails, discard it."""
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            os.replace(self.tmp, self.path)
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        try:
            self.file.close()
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.tmp)


@contextlib.contextmanager
def replacing(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """A binary file to write the new content of `path` to: it replaces `path` when the block
    ends cleanly, and is removed, leaving `path` as it was, when the block raises."""
    pending = PendingFile(path)
    try:
        yield pending.file
    except BaseException:
        pending.discard()
        raise
    pending.commit()


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """`Path(path).write_bytes(data)`, but a kill midway leaves the old file whole."""
    with replacing(path) as f:
        f.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """`Path(path).write_text(text)` (UTF-8), but a kill midway leaves the old file whole."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any, **json_kwargs: Any) -> None:
    """`obj` as JSON (`json.dumps(obj, **json_kwargs)` and a newline) at `path`, replacing the
    old file only once the new one is complete: an object json cannot serialise, or a kill
    midway, leaves the old file whole."""
    write_text(path, json.dumps(obj, **json_kwargs) + "\n")


def save_figure(fig: Any, path: str | os.PathLike, **savefig_kwargs: Any) -> None:
    """`fig.savefig(path, **savefig_kwargs)` for a matplotlib figure, replacing the old plot
    only once the new one is complete. The format comes from `path`'s suffix (or `format=`),
    since the temporary file's name says nothing about it."""
    fmt = savefig_kwargs.pop("format", None) or Path(path).suffix.lstrip(".") or None
    with replacing(path) as f:
        fig.savefig(f, format=fmt, **savefig_kwargs)


def _remove(path: str | os.PathLike) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary folder beside `path` to fill; when the block ends cleanly it becomes `path`
    (an existing folder there is moved aside, the new one renamed in, the old one deleted), and
    when the block raises it is deleted and `path` is left as it was. So a folder of several
    files (a saved policy: weights and the policy.json that describes them) appears whole or
    not at all. A kill between the two renames leaves no folder at `path` (and the old one as
    a hidden `.<name>.*.old` beside it): never a mix of old and new files."""
    target = os.path.abspath(path)
    if os.path.lexists(target) and not os.path.isdir(target):
        raise NotADirectoryError(f"{target}: exists and is not a folder")
    os.makedirs(os.path.dirname(target), exist_ok=True)
    tmp = _temporary_name(target)
    os.mkdir(tmp)
    try:
        yield Path(tmp)
        for folder, _, files in os.walk(tmp):
            for name in files:  # on disk before the rename makes them visible
                with open(os.path.join(folder, name), "rb") as f:
                    os.fsync(f.fileno())
        old = None
        if os.path.lexists(target):
            old = _temporary_name(target, ".old")
            os.replace(target, old)
        try:
            os.replace(tmp, target)
        except BaseException:
            if old is not None:
                os.replace(old, target)
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        _remove(old)
