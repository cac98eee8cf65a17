"""What every location that is a file-system path must satisfy, checked without the OS.

The transports whose location is an absolute path (``unix://``,
``unix-dgram://``, ``unix-seqpacket://``, ``fifo://``, ``mmap://``) call
:func:`path_problem` from their ``check_location``, so that a path the
kernel would refuse, or one that climbs out of the directory it names, is
:class:`~anyipc.InvalidAddress` before anything is opened or created.
"""

from __future__ import annotations

__all__ = ["NAME_MAX", "PATH_MAX", "path_problem"]

PATH_MAX = 4096  #: bytes of a path, its terminating NUL included (Linux's PATH_MAX)
NAME_MAX = 255  #: bytes of one component of a path (Linux's NAME_MAX)


def path_problem(path: str) -> str | None:
    """Why the absolute ``path`` cannot name an object, or ``None`` when it can.

    Refused: a ``..`` component (an address names one place as written:
    ``..`` makes it depend on the directories it climbs out of, and lets a
    name built from untrusted words escape its directory), a component
    longer than :data:`NAME_MAX` bytes, and a path of :data:`PATH_MAX`
    bytes or more.  Lengths are counted in the bytes the OS sees (UTF-8).
    """
    components = path.split("/")
    if ".." in components:
        return (
            f"{path!r} has a '..' component: write the path it leads to "
            "(resolve it first, e.g. with os.path.realpath)"
        )
    size = len(path.encode("utf-8", "surrogateescape"))
    if size >= PATH_MAX:
        return f"the path is {size} bytes; a path is at most {PATH_MAX - 1} bytes (PATH_MAX)"
    longest = max(components, key=lambda part: len(part.encode("utf-8", "surrogateescape")))
    if len(longest.encode("utf-8", "surrogateescape")) > NAME_MAX:
        return f"the path component {longest[:40]!r}... is longer than {NAME_MAX} bytes (NAME_MAX)"
    return None
