"""Generated files kept between runs: owner-only folders, a hash written with each file.

The PySD translation (``<cache>/pysd/<key>/``) and the generated vector-engine modules
(``<cache>/vector/*.py``) are Python code that is imported later.  Each one is written
together with a manifest (``sha256sum`` format: ``<hex digest>  <file name>``) of the
bytes that were written; before a cached file is used its bytes are hashed again and
compared with the manifest.  A file that was changed, truncated or appended to since it
was written is never imported: the caller rebuilds it, with one :class:`CacheWarning`.
Folders this module creates are owner-only (``drwx------``); folders that already exist
(a ``GREENPATH_CACHE_DIR`` chosen by the user) are left as they are.

The manifest lives beside the file, so it guards against damage (a disk, an editor, a
careless hand), not against someone who can write to the cache folder and forges both:
that is what the owner-only folders are for.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path

MANIFEST = "MANIFEST.sha256"


class CacheWarning(UserWarning):
    """A cached file did not match the hash recorded when it was written; it is rebuilt."""


def private_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` (and missing parents) owner-only; return it.

    Only the folders this call creates get mode ``0o700``; an existing folder keeps its mode.
    """
    path = Path(path)
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:  # created by another process meanwhile
            continue
        os.chmod(folder, 0o700)  # mkdir's mode is reduced by the umask, never widened
    return path


def digest(data: bytes) -> str:
    """Return the SHA-256 hex digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


def manifest_text(entries: Iterable[tuple[str, bytes]]) -> str:
    """Return manifest lines for ``(file name, bytes)`` pairs."""
    return "".join(f"{digest(data)}  {name}\n" for name, data in entries)


def write_manifest(folder: Path, names: Iterable[str], manifest: str = MANIFEST) -> Path:
    """Hash the files ``names`` of ``folder`` as they are now and write the manifest."""
    folder = Path(folder)
    text = manifest_text((n, (folder / n).read_bytes()) for n in names)
    path = folder / manifest
    path.write_text(text, encoding="utf-8")
    return path


def _recorded(manifest: Path) -> dict[str, str] | None:
    """Return ``name -> digest`` of a manifest, or None when it is missing or unreadable."""
    try:
        text = manifest.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    out: dict[str, str] = {}
    for line in text.splitlines():
        value, sep, name = line.partition("  ")
        if not sep or len(value) != 64 or not name or "/" in name or name in (".", ".."):
            return None
        out[name] = value
    return out or None


def read_verified(path: Path, manifest: Path) -> bytes | None:
    """Return the bytes of ``path`` if they match ``manifest``; else None.

    None without a word when ``path`` does not exist (not built yet); with one
    :class:`CacheWarning` when it exists but its manifest is missing or disagrees.
    The bytes returned are the ones that were checked: execute these, not the file again.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    recorded = _recorded(Path(manifest))
    if recorded is None or recorded.get(path.name) != digest(data):
        _mismatch(path)
        return None
    return data


def verify_folder(folder: Path, manifest: str = MANIFEST) -> bool:
    """Whether ``folder`` holds exactly the files its manifest lists, each with its hash.

    False without a word when the folder does not exist; with one :class:`CacheWarning`
    when it exists but differs (a changed, missing or added file, compiled bytecode
    included: it would be imported in place of the checked source).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return False
    recorded = _recorded(folder / manifest)
    present = {p.name for p in folder.iterdir()} - {manifest}
    ok = recorded is not None and present == set(recorded)
    if ok and recorded is not None:
        for name, value in recorded.items():
            path = folder / name
            if not path.is_file() or path.is_symlink() or digest(path.read_bytes()) != value:
                ok = False
                break
    if not ok:
        _mismatch(folder)
    return ok


def atomic_write_verified(path: Path, data: bytes, manifest: Path) -> None:
    """Write ``data`` to ``path`` and its manifest, each by a rename (readers see old or new)."""
    path, manifest = Path(path), Path(manifest)
    private_dir(path.parent)
    for target, payload in ((manifest, manifest_text([(path.name, data)]).encode()), (path, data)):
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _mismatch(path: Path) -> None:
    warnings.warn(
        f"cached file {path} does not match the hash recorded when it was written "
        "(changed or damaged); it is not used and is being rebuilt",
        CacheWarning, stacklevel=3,
    )


__all__ = ["MANIFEST", "CacheWarning", "atomic_write_verified", "digest", "manifest_text",
           "private_dir", "read_verified", "verify_folder", "write_manifest"]
