"""Every command's help reads as typed: argparse %-formats help strings but not descriptions."""

from __future__ import annotations

import argparse

import pytest

from greenpath.cli import build_parser


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


@pytest.mark.parametrize("name", sorted(_subparsers()))
def test_help_shows_no_doubled_percent_sign(name):
    text = _subparsers()[name].format_help()
    assert "%%" not in text, [line for line in text.splitlines() if "%%" in line]
