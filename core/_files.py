"""Paths that named endpoints own: what sits there, and removing only what is ours."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable

from anyipc._errors import AddressInUse, map_os_error

__all__ = ["existing", "file_kind", "identity", "unlink_if_same"]

Path = str | bytes


def file_kind(mode: int) -> str:
    """What an ``st_mode`` is, in words ("a regular file", "a socket"...)."""
    for test, words in (
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISFIFO, "a FIFO"),
    ):
        if test(mode):
            return words
    return f"file type {stat.S_IFMT(mode):o}"


def identity(info: os.stat_result) -> tuple[int, int]:
    """The (device, inode) pair that tells one file from its successor at the same path."""
    return (info.st_dev, info.st_ino)


def unlink_if_same(path: Path, owned: tuple[int, int]) -> None:
    """Remove ``path`` only if it is still the file ``owned`` identifies (OSError otherwise)."""
    if identity(os.lstat(path)) == owned:
        os.unlink(path)


def existing(
    path: Path, is_kind: Callable[[int], bool], kind: str, context: str
) -> os.stat_result | None:
    """What is at ``path`` (not following links), or ``None`` if nothing is.

    Raises :class:`AddressInUse` when it is not ``kind`` (``is_kind`` of its
    mode is false): such a file is never removed.  Other OS errors are
    mapped (``PermissionDenied``...).
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise map_os_error(exc, context) from exc
    if not is_kind(info.st_mode):
        raise AddressInUse(
            errno.EADDRINUSE,
            f"{context}: {os.fsdecode(path)} exists and is not {kind} "
            f"({file_kind(info.st_mode)}); it is left alone",
        )
    return info
