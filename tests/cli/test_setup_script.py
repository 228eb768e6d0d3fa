"""scripts/apt_wait.sh: setup waits for another package manager's lock instead of failing."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "apt_wait.sh"
LOCKED = ("E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 "
          "(unattended-upgr)")


def _fake_apt(tmp_path: Path, failures: int, message: str) -> Path:
    """Put an apt-get on PATH that fails ``failures`` times with ``message``, then succeeds."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "apt-get"
    calls = tmp_path / "calls"
    fake.write_text(
        "#!/usr/bin/env bash\n"
        f'echo "$*" >> {calls}\n'
        f'n=$(wc -l < {calls})\n'
        f'if [ "$n" -le {failures} ]; then echo "{message}" >&2; exit 100; fi\n'
        'echo "installed"\n', encoding="utf-8")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    return bin_dir


def _run(bin_dir: Path, wait: int = 30) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "GREENPATH_APT_POLL": "0",
           "GREENPATH_APT_WAIT": str(wait)}
    return subprocess.run(["bash", "-c", f". {SCRIPT}; apt_get_wait install -y chromium"],
                          capture_output=True, text=True, env=env, timeout=60)


def test_waits_while_the_lock_is_held_then_installs(tmp_path):
    proc = _run(_fake_apt(tmp_path, 3, LOCKED))
    assert proc.returncode == 0, proc.stderr
    assert "installed" in proc.stdout
    assert "another package manager holds the apt/dpkg lock" in proc.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert len(calls) == 4
    assert all(c.endswith("install -y chromium") for c in calls)
    assert calls[0].startswith("-o DPkg::Lock::Timeout=0 ")


def test_other_errors_fail_at_once(tmp_path):
    proc = _run(_fake_apt(tmp_path, 5, "E: Unable to locate package chromium"))
    assert proc.returncode == 100
    assert "Unable to locate package chromium" in proc.stderr
    assert len((tmp_path / "calls").read_text().splitlines()) == 1


def test_gives_up_after_the_wait_with_a_clear_message(tmp_path):
    proc = _run(_fake_apt(tmp_path, 99, LOCKED), wait=0)
    assert proc.returncode == 100
    assert "still held after 0 s" in proc.stderr
    assert LOCKED in proc.stderr
