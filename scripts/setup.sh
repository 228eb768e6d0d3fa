#!/usr/bin/env bash
# Set up greenpath on a fresh machine: a virtualenv in .venv with the pinned packages,
# and the system packages the charts and browser tests need.
#   bash scripts/setup.sh          # to use the app and the CLI
#   bash scripts/setup.sh --test   # also test tools and Chromium for the browser test
set -euo pipefail
cd "$(dirname "$0")/.."
want_tests=0
[ "${1:-}" = "--test" ] && want_tests=1

# System packages: Debian's Chromium for the real-browser test (the Chinese font for
# charts ships inside the package: greenpath/outputs/fonts, SIL OFL).  Needs root and apt;
# elsewhere, install the equivalent yourself.
packages=""
[ "$want_tests" = 1 ] && packages="chromium"
missing=""
for p in $packages; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    . scripts/apt_wait.sh  # waits while another package manager holds the lock
    apt_get_wait update -qq
    DEBIAN_FRONTEND=noninteractive apt_get_wait install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "setup: please install:$missing (Debian package names)" >&2
  fi
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "$want_tests" = 1 ]; then
  .venv/bin/python -m pip install -q -e ".[test]"
else
  .venv/bin/python -m pip install -q -e .
fi
