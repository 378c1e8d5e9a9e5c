"""Reading a user's or a run's file safely: only regular files, never more than a bound.

Every file longwriter reads may have been replaced by something hostile or odd: a FIFO (an
open would wait forever), a symlink to ``/dev/zero`` (a read would never end), a directory, a
file of gigabytes. One function reads them all the same way. Standard library only."""

from __future__ import annotations

import os
import stat
from pathlib import Path


class NotRegularFile(OSError):
    """The path exists but is not a regular file (``strerror`` says what it is)."""


class TooLarge(OSError):
    """The file is larger than the caller's bound."""


def read_regular(path: str | Path, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes. Raises FileNotFoundError,
    NotRegularFile, TooLarge, ValueError (a NUL in the path) or another OSError."""
    check_regular(os.stat(path).st_mode)  # devices, FIFOs and directories are never opened
    # O_NONBLOCK: should the path turn into a FIFO after the stat, opening it cannot hang
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    with os.fdopen(fd, "rb") as f:
        check_regular(os.fstat(fd).st_mode)
        data = f.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(0, f"larger than {_size(limit)}")
    return data


def check_regular(mode: int) -> None:
    """Raise NotRegularFile unless ``mode`` is a regular file's."""
    if not stat.S_ISREG(mode):
        kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a special file")
        raise NotRegularFile(0, f"not a regular file ({kind})")


def _size(limit: int) -> str:
    return f"{limit // 2**20} MiB" if limit >= 2**20 else f"{limit:,} bytes"
