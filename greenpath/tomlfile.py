"""Reading TOML files a user may have edited: scenario, targets and calibration files.

Every way such a file can be unreadable becomes the caller's own error class (a
``ValueError`` naming the file), never a ``UnicodeDecodeError`` or ``RecursionError``
traceback: bytes that are not UTF-8 text (a UTF-8 byte-order mark is allowed), a file
larger than the caller allows, brackets nested deeper than :data:`MAX_NESTING` (Python's
TOML parser recurses once per level) and TOML syntax errors.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

#: Deepest nesting of ``[`` / ``{`` a project TOML file may have (the deepest real one
#: needs 3: an array of tables holding an inline table).
MAX_NESTING = 50


def nesting(text: str) -> int:
    """Return an upper bound of the bracket nesting of TOML ``text``.

    Brackets inside strings and comments count too, so a legal file can only be
    over-counted; :data:`MAX_NESTING` is far above what a project file needs.
    """
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}" and depth:
            depth -= 1
    return deepest


def decode(data: bytes, source: str, error: type[Exception] = ValueError,
           max_bytes: int | None = None, what: str = "a TOML file") -> str:
    """Return the text of ``data`` (UTF-8, a byte-order mark removed) or raise ``error``."""
    if max_bytes is not None and len(data) > max_bytes:
        raise error(f"{source}: larger than the {max_bytes:,} bytes allowed for {what}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{source}: not UTF-8 text (the first character that cannot be read is at "
                    f"position {exc.start + 1}); {what} is TOML text: save it as UTF-8 text from a "
                    "text editor (in Excel or Notepad: 'UTF-8' as the encoding)") from None
    return text.removeprefix("\ufeff")


def loads(text: str, source: str, error: type[Exception] = ValueError) -> dict:
    """Parse TOML ``text``; any problem is ``error`` naming ``source``."""
    text = text.removeprefix("\ufeff")
    if nesting(text) > MAX_NESTING:
        raise error(f"{source}: brackets nested more than {MAX_NESTING} deep; not a file "
                    "this program writes or reads")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{source}: not valid TOML: {exc}") from None
    except RecursionError:  # pragma: no cover - the nesting check comes first
        raise error(f"{source}: not valid TOML: nested too deep") from None


def read(path: str | Path, error: type[Exception] = ValueError, source: str | None = None,
         max_bytes: int | None = None, what: str = "a TOML file") -> dict:
    """Read and parse the TOML file ``path``; any problem is ``error`` naming the file.

    With ``max_bytes``, at most one byte more than that is read from disk.
    """
    path = Path(path)
    source = path.name if source is None else source
    with path.open("rb") as handle:
        data = handle.read() if max_bytes is None else handle.read(max_bytes + 1)
    return loads(decode(data, source, error, max_bytes, what), source, error)


__all__ = ["MAX_NESTING", "decode", "loads", "nesting", "read"]
