"""File contents: spooled to disk above a threshold, shared between commits.

A :class:`FileData` is immutable once its commit is finished; open commits get a
private copy on first write (copy-on-write), so finished commits keep their
snapshot while sharing unchanged files with their children.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Iterator

SPOOL_THRESHOLD = 4 * 1024 * 1024  # bytes kept in memory before spilling to a temp file
CHUNK_SIZE = 2 * 1024 * 1024  # GetFile message size (pachd sends <= 2 MiB chunks too)


class FileData:
    """The contents of one PFS file."""

    def __init__(self, owner: object | None = None) -> None:
        self._buf = tempfile.SpooledTemporaryFile(max_size=SPOOL_THRESHOLD)  # noqa: SIM115
        self._hash = hashlib.sha256()
        self.size = 0
        self.owner = owner  # the open commit allowed to append in place

    def append(self, data: bytes) -> None:
        if not data:
            return
        self._buf.seek(0, 2)
        self._buf.write(data)
        self._hash.update(data)
        self.size += len(data)

    def copy(self, owner: object | None) -> FileData:
        clone = FileData(owner)
        self._buf.seek(0)
        shutil.copyfileobj(self._buf, clone._buf, CHUNK_SIZE)
        clone._hash = self._hash.copy()
        clone.size = self.size
        return clone

    def digest(self) -> bytes:
        return self._hash.digest()

    def read(self, offset: int = 0, length: int | None = None) -> bytes:
        self._buf.seek(offset)
        return self._buf.read() if length is None else self._buf.read(length)

    def chunks(self, offset: int = 0, size: int = CHUNK_SIZE) -> Iterator[bytes]:
        pos = offset
        while pos < self.size:
            self._buf.seek(pos)
            data = self._buf.read(min(size, self.size - pos))
            if not data:
                return
            pos += len(data)
            yield data

    def close(self) -> None:
        self._buf.close()

    @classmethod
    def from_bytes(cls, data: bytes, owner: object | None = None) -> FileData:
        fd = cls(owner)
        fd.append(data)
        return fd
