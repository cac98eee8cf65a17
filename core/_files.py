"""Words for what sits at a path, for errors that refuse to touch it."""

from __future__ import annotations

import stat

__all__ = ["file_kind"]


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
