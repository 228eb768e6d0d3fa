"""Loading the vector engine: one compiled model per process and set of year-table levers.

:func:`vector_model` returns the process's :class:`~greenpath.engines.vector.VectorModel`
of ``model/jiaozuo.mdl``, or of a variant of it in which the named levers follow year
tables (:func:`with_year_tables`, the one rewrite of the model's text for year tables; the
variant is written once under the cache, :func:`cached_text_file`).  A model is compiled on
first use under a lock and rebuilt when the ``.mdl`` changes.  Runners (ensembles, batches,
wedges), the calibration and the app's scalar backend all load it from here.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from greenpath.engines.base import cache_root
from greenpath.model import registry as reg
from greenpath.model.mdl import MDL_PATH

_LOCK = threading.Lock()
# (tabled names, outputs or None) -> VectorModel
_MODELS: dict[tuple[frozenset[str], frozenset[str] | None], Any] = {}
_TABLE_SUFFIX = " year table"


class YearTableError(ValueError):
    """A constant that cannot be given a year table (its equation is not ``name = <number>``)."""

    def __init__(self, key: str, vensim_name: str, message: str):
        super().__init__(message)
        self.key, self.vensim_name = key, vensim_name


def with_year_tables(text: str, constants: Iterable[tuple[str, str, str]], mdl_name: str) -> str:
    """Return ``.mdl`` ``text`` in which each constant follows a year table over ``data year``.

    ``constants`` are ``(registry key, Vensim name, unit)``; each must have exactly one
    equation ``name = <number>`` in ``text`` (else :class:`YearTableError`, naming
    ``mdl_name``).  The table starts flat at that number; runs pass its values as a
    lookup (``<name>_year_table``).  The one rewrite of the model's text for year tables:
    the ensembles and the model versions of ``greenpath check`` / ``compare`` use it.
    """
    for key, vensim, unit in sorted(constants):
        words = [re.escape(w) for w in vensim.split()]
        pattern = re.compile(
            r"^(" + r"\s+".join(words) + r")\s*=\s*([-+0-9.eE]+)\s*$", re.MULTILINE | re.IGNORECASE
        )
        found = list(pattern.finditer(text))
        if len(found) != 1:
            raise YearTableError(key, vensim, f"a year table for {key!r} needs one constant equation "
                                              f"'{vensim} = <number>' in {mdl_name}, found {len(found)}")
        match = found[0]
        vname, value = match.group(1), float(match.group(2))
        lookup = f"{vname}{_TABLE_SUFFIX}"
        definition = (
            f"{lookup}(\n\t[(2005,0)-(2035,1)],(2005,{value!r}),(2035,{value!r}))\n"
            f"\t~\t{unit}\n\t~\tYear table of {vname} (generated for time-varying runs).\n\t|\n\n"
            f"{vname} = {lookup}(data year)"
        )
        text = text[: match.start()] + definition + text[match.end():]
    return text


def cached_text_file(text: str, folder: Path, stem: str) -> Path:
    """Write ``text`` (once) as ``folder/<stem>_<hash>.mdl`` with a checked manifest; return the path.

    The file name holds the hash of the text; the manifest that of the bytes, checked
    before every use (a damaged file is written again).
    """
    from greenpath.engines.cache import atomic_write_verified, read_verified

    data = text.encode("utf-8")
    path = folder / f"{stem}_{hashlib.sha256(data).hexdigest()[:16]}.mdl"
    if read_verified(path, path.with_suffix(".sha256")) != data:
        atomic_write_verified(path, data, path.with_suffix(".sha256"))
    return path


def _table_variant(names: frozenset[str]) -> tuple[Path, str]:
    """Write (once) the .mdl variant in which the levers ``names`` follow year tables.

    Returns the variant's path and the SHA-256 of the ``model/jiaozuo.mdl`` bytes it
    was derived from.  A lever whose equation is not ``name = <number>`` (e.g. a
    guarded ``MAX(0, ...)``) cannot be tabled this way:
    :class:`~greenpath.engines.vector.UnsupportedConstructError` (``engine="auto"`` then
    falls back to PySD, which replaces the component with the table).
    """
    from greenpath.engines.vector import UnsupportedConstructError

    raw = MDL_PATH.read_bytes()
    source = hashlib.sha256(raw).hexdigest()
    params = [reg.lookup(name, "time_varying") for name in names]
    try:
        text = with_year_tables(raw.decode("utf-8"), [(p.name, p.vensim_name, p.unit) for p in params],
                                MDL_PATH.name)
    except YearTableError as exc:
        raise UnsupportedConstructError(exc.vensim_name, "a year table", f"time_varying: {exc}") from None
    return cached_text_file(text, cache_root() / "vector_tables", f"{MDL_PATH.stem}_tables"), source


def _mdl_sha256() -> str:
    """Return the SHA-256 of ``model/jiaozuo.mdl``, hashed again only when its stat changes.

    Called on every :func:`vector_model` call (each lever move's bands in the app):
    a ``stat`` instead of reading and hashing the file each time.
    """
    from greenpath.model.mdl import model_hash

    global _MDL_HASH
    st = MDL_PATH.stat()
    signature = (str(MDL_PATH), st.st_mtime_ns, st.st_size)
    if _MDL_HASH[0] != signature:
        _MDL_HASH = (signature, model_hash(MDL_PATH))
    return _MDL_HASH[1]


_MDL_HASH: tuple[tuple[str, int, int] | None, str] = (None, "")


def _compile(key: frozenset[str], outputs: frozenset[str] | None = None) -> Any:
    from greenpath.engines.vector import VectorModel

    if not key:  # source_sha256 = its own hash
        return VectorModel(MDL_PATH, cache_root() / "vector", outputs=outputs)
    path, source = _table_variant(key)
    model = VectorModel(path, cache_root() / "vector", outputs=outputs)
    model.source_sha256 = source
    return model


def _output_names(table_names: frozenset[str], outputs: Iterable[str]) -> frozenset[str]:
    """Python names of ``outputs`` (Python or Vensim names), read from the full model's names."""
    if isinstance(outputs, str):
        raise TypeError("outputs must be a list of variable names, not a string")
    module = vector_model(table_names).module
    names, unknown = set(), []
    for name in outputs:
        py = module._py_name(name)
        if py is None or py not in module._DYNAMIC_OUTPUTS + module._STATIC_OUTPUTS:
            unknown.append(name)
        else:
            names.add(py)
    if unknown:
        raise KeyError(f"not outputs of {MDL_PATH.name}: " + ", ".join(repr(u) for u in unknown))
    return frozenset(names)


def vector_model(table_names: Iterable[str] = (), outputs: Iterable[str] | None = None) -> Any:
    """Return the process's :class:`~greenpath.engines.vector.VectorModel` (created under a lock).

    One compiled model per process and set of tabled names, rebuilt when
    ``model/jiaozuo.mdl`` changes: every call compares the file's SHA-256 with
    the one the cached model was compiled from (``model.source_sha256``) and
    recompiles under the lock when they differ (a long-lived process -- the app,
    a Dask worker -- never labels results of an old model with the new hash).

    Parameters
    ----------
    table_names
        Registry parameters that follow year tables in the runs to come; each set
        of names has its own compiled model variant (see the module docstring).
    outputs
        Variables (Python or Vensim names) the runs to come need: the returned model's
        vector backend then computes only their dependency cone (stocks they need and
        everything upstream; the values bit for bit the full model's, see
        :class:`~greenpath.engines.vector.VectorModel`), one compiled model per set.
        None (default): the full model.

    Returns
    -------
    greenpath.engines.vector.VectorModel
        The compiled model; it is shared, so never call its ``refresh()``.
        ``source_sha256`` is the SHA-256 of the ``model/jiaozuo.mdl`` it was
        compiled from (the ``model_sha256`` of the results it gives).

    Raises
    ------
    greenpath.engines.vector.UnsupportedConstructError
        The vector engine refuses the model (a construct it does not implement,
        or a tabled lever that is not a plain constant).
    KeyError
        An output that is not a variable of the model.
    """
    tabled = frozenset(table_names)
    names = None if outputs is None else _output_names(tabled, outputs)
    key = (tabled, names)
    current = _mdl_sha256()
    model = _MODELS.get(key)
    if model is not None and model.source_sha256 == current:
        return model
    with _LOCK:
        model = _MODELS.get(key)
        if model is None or model.source_sha256 != _mdl_sha256():
            model = _compile(tabled, names)
            _MODELS[key] = model
    return model


def _table_lookup(name: str) -> str:
    """Python name of the lookup that carries lever ``name``'s year table in a variant."""
    return name + _TABLE_SUFFIX.replace(" ", "_")
