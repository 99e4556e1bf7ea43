"""A local storage filesystem for Ray Tune whose files appear whole or not at all.

Tune copies its experiment state (`tuner.pkl`, `experiment_state-*.json`, each trial's
`result.json`) and checkpoints into `--output-dir` file by file, and pyarrow's local filesystem
writes each file in place: truncate, then write. A driver killed during such a copy leaves a
truncated `tuner.pkl` or `result.json` that no `--resume` can read. This filesystem writes every
file to a temporary name in the same folder and renames it over the target when the file is
complete (`os.replace`, atomic on POSIX; `controllers.atomic_files`, which writes the results
files the same way): a kill leaves the previous version, or a stray `.*.part` file that Tune
never reads.

Use `storage_filesystem()` wherever Tune is told where storage is: `RunConfig`,
`Tuner.can_restore` and `Tuner.restore`.
"""

from __future__ import annotations

import io

import pyarrow
import pyarrow.fs
from fsspec.implementations.local import LocalFileSystem

from controllers.atomic_files import PART_SUFFIX as PART_SUFFIX
from controllers.atomic_files import PendingFile


class _ReplaceOnClose(io.RawIOBase):
    """A write-only file that lands at `path` only when closed; until then it is a hidden
    temporary file beside `path` (`atomic_files.PendingFile`). After a failed write (a full
    disk) closing discards it."""

    def __init__(self, path: str) -> None:
        self._pending = PendingFile(path)
        self._failed = False

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        try:
            return self._pending.file.write(data)
        except BaseException:
            self._failed = True
            raise

    def tell(self) -> int:
        return self._pending.file.tell()

    def flush(self) -> None:
        if not self._pending.file.closed:
            self._pending.file.flush()

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self._failed:
                self._pending.discard()
            else:
                self._pending.commit()
        finally:
            super().close()


class AtomicLocalHandler(pyarrow.fs.FSSpecHandler):
    """pyarrow filesystem handler over the local disk whose output streams replace on close."""

    def __init__(self) -> None:
        super().__init__(LocalFileSystem())

    def __reduce__(self):  # Tune ships the filesystem to its trial actors
        return (AtomicLocalHandler, ())

    def get_type_name(self) -> str:
        return "atomic-local"

    def open_output_stream(self, path, metadata):
        return pyarrow.PythonFile(_ReplaceOnClose(path), mode="w")


def storage_filesystem() -> pyarrow.fs.FileSystem:
    return pyarrow.fs.PyFileSystem(AtomicLocalHandler())
