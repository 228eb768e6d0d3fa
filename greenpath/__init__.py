"""Greenpath: Jiaozuo green low-carbon transition simulator."""

from pathlib import Path as _Path


def shipped_dir(folder: str) -> _Path:
    """Return the folder of data shipped beside the code (``scenarios``, ``targets``).

    A wheel installs them as ``greenpath/_shipped/<folder>``; a source checkout (and
    its editable install) keeps them at the top of the repository.
    """
    installed = _Path(__file__).resolve().parent / "_shipped" / folder
    return installed if installed.is_dir() else _Path(__file__).resolve().parents[1] / folder
