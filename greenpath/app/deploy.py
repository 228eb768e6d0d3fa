"""Serving the app to many users: several app processes behind a proxy with sticky sessions.

One Streamlit process runs every session's script in threads of one Python interpreter,
so it uses about one core whatever the machine has.  To use every core, run one app
process per core on consecutive local ports and let the organisation's reverse proxy
spread the users over them, keeping each user on one process (a session's websocket,
its downloads and uploads must reach the process that holds the session):

    python -m greenpath.app.deploy serve            # one process per core from port 8501
    python -m greenpath.app.deploy nginx > greenpath_upstream.conf

``serve`` starts the processes (bound to 127.0.0.1), waits until each answers its health
check, prints the ports and keeps them running until stopped (Ctrl-C or SIGTERM stops
them all).  ``nginx`` prints the proxy configuration for the same ports: a sticky cookie
(``gp_route``) set on the first response, hashed to a process, and websocket upgrades.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRST_PORT = 8501
#: Most processes ``auto`` starts: each holds its own models and caches (about 250 MB).
MAX_AUTO = 16


def cores() -> int:
    """Return the cores this process may run on (its CPU affinity, else the CPU count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def process_count(requested: str | int = "auto", available: int | None = None) -> int:
    """Return how many app processes to run: one per core for ``"auto"``.

    Raises
    ------
    ValueError
        For a count that is not a positive whole number or ``"auto"``.
    """
    if requested == "auto":
        return max(1, min(MAX_AUTO, available if available is not None else cores()))
    try:
        n = int(requested)
    except (TypeError, ValueError):
        raise ValueError(f"processes = {requested!r}: give a whole number from 1, "
                         "or 'auto' (one per core)") from None
    if n < 1:
        raise ValueError(f"processes = {n}: give a whole number from 1, or 'auto'")
    return n


def ports(n: int, first: int = FIRST_PORT) -> list[int]:
    """Return the ``n`` consecutive local ports of the app processes."""
    return list(range(first, first + n))


def nginx_config(app_ports: Sequence[int], upstream: str = "greenpath") -> str:
    """Return nginx configuration for ``app_ports``: sticky cookie and websocket upgrades.

    Put the ``map`` and ``upstream`` blocks in the ``http`` context and the ``location``
    in the organisation's HTTPS ``server`` (with its sign-on in front).  A first request
    has no ``gp_route`` cookie: it is routed by a fresh request id, which the response
    then sets as the cookie, so every later request of that browser reaches the same
    process (``hash ... consistent``).
    """
    servers = "\n".join(f"    server 127.0.0.1:{p};" for p in app_ports)
    return f"""# greenpath: {len(app_ports)} app processes, sticky by cookie (generated)
map $cookie_gp_route $gp_route {{
    ""      $request_id;
    default $cookie_gp_route;
}}
map $http_upgrade $connection_upgrade {{
    default upgrade;
    ""      close;
}}
upstream {upstream} {{
    hash $gp_route consistent;
{servers}
}}
# in the HTTPS server block:
location / {{
    proxy_pass http://{upstream};
    proxy_http_version 1.1;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection $connection_upgrade;
    proxy_set_header Host $host;
    proxy_read_timeout 86400;
    add_header Set-Cookie "gp_route=$gp_route; Path=/; HttpOnly; SameSite=Lax; Secure";
}}
"""


def command(port: int) -> list[str]:
    """Return the command line of the app process on ``port``."""
    return [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
            "--server.port", str(port), "--server.address", "127.0.0.1",
            "--server.headless", "true", "--browser.gatherUsageStats", "false"]


def wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Wait until the process on ``port`` answers its health check.

    Raises
    ------
    RuntimeError
        When it exits or does not answer within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the app process on port {port} exited with "
                               f"{proc.returncode} (is the port taken?)")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health",
                                        timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the app process on port {port} did not answer within "
                               f"{timeout:.0f} s")
        time.sleep(0.2)


def start(app_ports: Sequence[int]) -> list[subprocess.Popen]:
    """Start one app process per port and wait until all answer; stop all on failure."""
    procs: list[subprocess.Popen] = []
    try:
        for p in app_ports:  # appended one by one: an interrupt between two starts stops the first
            procs.append(subprocess.Popen(command(p), cwd=ROOT))
        for p, proc in zip(app_ports, procs, strict=True):
            wait_healthy(p, proc)
    except BaseException:
        stop(procs)
        raise
    return procs


def stop(procs: Sequence[subprocess.Popen]) -> None:
    """Stop the app processes (terminate, then kill what is left after 15 s)."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``serve`` or ``nginx`` (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m greenpath.app.deploy",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("serve", "nginx"))
    parser.add_argument("--processes", default="auto",
                        help="app processes: a number, or 'auto' for one per core")
    parser.add_argument("--first-port", type=int, default=FIRST_PORT)
    args = parser.parse_args(argv)
    try:
        n = process_count(args.processes)
    except ValueError as exc:
        parser.error(str(exc))
    if args.first_port < 1 or args.first_port + n - 1 > 65535:
        parser.error(f"--first-port {args.first_port}: the {n} ports from it must lie in 1 to 65535")
    app_ports = ports(n, args.first_port)
    if args.action == "nginx":
        print(nginx_config(app_ports))
        return 0
    # SIGTERM stops them like Ctrl-C, also while they start (a health check can wait 120 s)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    try:
        procs = start(app_ports)
    except KeyboardInterrupt:
        print("stopped while the app processes were starting; none is left running", file=sys.stderr)
        return 130
    except (RuntimeError, OSError) as exc:
        print(f"{parser.prog}: error: {exc}; none is left running", file=sys.stderr)
        return 2
    print(f"{n} app processes answering on 127.0.0.1 ports "
          f"{', '.join(map(str, app_ports))} ({cores()} cores); Ctrl-C stops them", flush=True)
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(1)
        print("an app process stopped; stopping the others", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop(procs)


if __name__ == "__main__":
    raise SystemExit(main())
