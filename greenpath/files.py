"""Writing results to disk: CSV, XLSX and a JSON metadata sidecar.

Files are written to a temporary name and renamed, so an interrupted write never
leaves a truncated file; existing files are only replaced when the caller says so.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from greenpath.engines.base import RunResult


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files readable by their owner only; results are for sharing, so the
# final file gets the permissions a plain open() would have given it.
_FILE_MODE = 0o666 & ~_umask()


class OutputExistsError(FileExistsError):
    """Refusing to overwrite a file the user already has."""


def atomic_write(path: Path, write: Callable[[Path], object], overwrite: bool = False) -> Path:
    """Call ``write(tmp)`` then move ``tmp`` to ``path``."""
    return atomic_write_all([(path, write)], overwrite)[0]


def atomic_write_all(items: list[tuple[Path, Callable[[Path], object]]],
                     overwrite: bool = False) -> list[Path]:
    """Write several files all or none: every ``write(tmp)`` first, then the renames.

    A write that fails (a full disk, a read-only folder: any ``OSError``) leaves no
    new file and no temporary file behind; a folder this call created is removed again.
    """
    paths = [Path(p) for p, _ in items]
    if not overwrite:
        for path in paths:
            if path.exists():
                raise OutputExistsError(f"{path} exists; pass --force to replace it")
    created: list[Path] = []
    for folder in dict.fromkeys(p.parent for p in paths):
        missing = [f for f in (folder, *folder.parents) if not f.exists()]
        folder.mkdir(parents=True, exist_ok=True)
        created.extend(reversed(missing))
    temps: list[str] = []
    try:
        for path, (_, write) in zip(paths, items, strict=True):
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix,
                                       dir=path.parent)
            os.close(fd)
            temps.append(tmp)
            write(Path(tmp))
            os.chmod(tmp, _FILE_MODE)
        for tmp, path in zip(temps, paths, strict=True):
            os.replace(tmp, path)
    finally:
        for tmp in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)
        if not all(p.exists() for p in paths):  # failed: remove the folders made for it
            for folder in reversed(created):
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only when empty
    return paths


def metadata_rows(metadata: dict, prefix: str = "") -> list[tuple[str, str]]:
    """Flatten run metadata into ``(key, value)`` rows: nested keys joined by ``.``.

    A spreadsheet then shows one setting per row (``software.pysd``,
    ``effective_params.wind_build_rate``) instead of one cell of JSON.
    """
    rows: list[tuple[str, str]] = []
    for key, value in metadata.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            rows.extend(metadata_rows(value, f"{name}."))
        elif isinstance(value, list | tuple | dict):
            rows.append((name, json.dumps(value, ensure_ascii=False, default=str)))
        else:
            rows.append((name, "" if value is None else str(value)))
    return rows


def long_frame(frame: pd.DataFrame, units: dict[str, str], scenario: str) -> pd.DataFrame:
    """Years x variables -> long rows ``scenario, variable, unit, year, value``."""
    long = frame.rename_axis("year").reset_index().melt(id_vars="year", var_name="variable",
                                                        value_name="value")
    long.insert(0, "scenario", scenario)
    long.insert(2, "unit", long["variable"].map(lambda v: units.get(v, "")))
    return long[["scenario", "variable", "unit", "year", "value"]]


def write_result(result: RunResult, out_dir: Path, stem: str | None = None,
                 overwrite: bool = False) -> list[Path]:
    """Write the results of one run; return the paths.

    ``stem``.csv holds long rows (scenario, variable, unit, year, value), ``.xlsx`` the
    years x variables table with a units sheet and the metadata as key/value rows,
    ``.iamc.csv`` the IAMC template (:mod:`greenpath.outputs.iamc`) and ``.meta.json`` the
    metadata.
    """
    from greenpath.outputs import iamc

    scenario = result.metadata.get("scenario", "run")
    stem = stem or scenario
    out_dir = Path(out_dir)
    targets = [out_dir / f"{stem}.csv", out_dir / f"{stem}.xlsx",
               out_dir / f"{stem}.iamc.csv", out_dir / f"{stem}.meta.json"]
    if not overwrite:
        for t in targets:
            if t.exists():
                raise OutputExistsError(f"{t} exists; pass --force to replace it")
    units = pd.DataFrame({"variable": list(result.units), "unit": list(result.units.values())})
    meta_text = json.dumps(result.metadata, indent=2, ensure_ascii=False, default=str)
    meta_rows = pd.DataFrame(metadata_rows(result.metadata), columns=["key", "value"])
    iamc_table = iamc.frame_to_iamc({scenario: result.frame}, result.units)

    def csv(tmp: Path) -> None:
        # 12 digits: no loss a reader would see
        long_frame(result.frame, result.units, scenario).to_csv(tmp, index=False,
                                                                float_format="%.12g")

    def xlsx(tmp: Path) -> None:
        with pd.ExcelWriter(tmp, engine="openpyxl") as xw:
            result.frame.to_excel(xw, sheet_name="results")
            units.to_excel(xw, sheet_name="units", index=False)
            meta_rows.to_excel(xw, sheet_name="metadata", index=False)

    def iamc_csv(tmp: Path) -> None:
        iamc.write_iamc(iamc_table, tmp, overwrite=True)

    def meta(tmp: Path) -> None:
        tmp.write_text(meta_text, encoding="utf-8")

    return atomic_write_all(list(zip(targets, (csv, xlsx, iamc_csv, meta), strict=True)), overwrite=True)
