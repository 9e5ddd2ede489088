"""Replacing a file atomically: written to a fresh temporary name beside it, flushed to disk, then renamed over
it, so a reader (or a crash) sees the old file or the new one, never half of either."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable
from pathlib import Path


def temp_beside(path: Path) -> Path:
    """A fresh temporary name in ``path``'s folder (created if needed), for an atomic replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def write_lines_atomically(path: Path, lines: Iterable[str]) -> int:
    """Write ``lines`` (each without its newline) to ``path`` atomically; returns how many were written."""
    temp = temp_beside(path)
    count = 0
    try:
        with open(temp, "w", encoding="utf-8", newline="\n") as out:
            for count, line in enumerate(lines, start=1):  # noqa: B007 - the count is the result
                out.write(line)
                out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    return count


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    write_lines_atomically(path, [text[:-1] if text.endswith("\n") else text])


__all__ = ["temp_beside", "write_lines_atomically", "write_text_atomically"]
