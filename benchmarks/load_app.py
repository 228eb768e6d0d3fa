"""Load test of the app at Streamlit's protocol level: prints figures, asserts nothing.

    python benchmarks/load_app.py [--users 10] [--interval 2] [--duration 60]
                                  [--processes 1] [--port 0] [--url ws://127.0.0.1:8501]

Each simulated user is what a browser tab is to the server, without the browser: a
websocket on ``/_stcore/stream`` speaking Streamlit's protobuf messages (``BackMsg``
out, ``ForwardMsg`` in; the browser client does the same).  A user opens a session
(``rerun_script`` with no widget state, as a page load does), reads the id of the wind
build-rate slider (and of the fragment it is drawn in) from the deltas, then every
``--interval`` seconds (the first move at a random offset) sets that slider to a value
no user has set before and sends the rerun of its fragment, as a browser does when a
slider is released.

Figures, each exactly defined:

* **response**: from sending a move to the ``script_finished`` message of its rerun
  (the server has sent every element of the page); median, 95th percentile, maximum;
* **dropped moves**: moves never answered: overtaken by the same user's next move before
  a rerun showed them (a rerun asked for while another runs replaces it), or without an
  answer when the test ended.  A move counts as answered by the first rerun that
  finishes with its value in the share link the server sets (so the move took effect);
* **server CPU** (when this script starts the servers): user + system seconds of the
  app processes over the test, per move and as a share of the machine's cores;
* **memory**: resident set size of each app process at the end.

``--processes N`` starts N app processes on consecutive ports (the deployment of
README "Serving it to many users": one per core behind a proxy with sticky sessions);
users are spread over them round-robin, as sticky sessions would pin them.  Only
loopback addresses are used: ``--url`` must be ``ws://127.0.0.1`` or ``ws://localhost``.
Every loop is bounded by ``--duration`` (plus one minute to drain), then the script
stops its servers and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bench_app import cpu_seconds, rss_mb  # this folder: the app benchmark's process probes

ROOT = Path(__file__).resolve().parents[1]
LEVER_KEY = "w_lever_wind_build_rate"
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


@dataclass
class User:
    """One simulated browser tab and what it measured."""

    index: int
    url: str
    sent: dict[int, float] = field(default_factory=dict)
    response: list[float] = field(default_factory=list)
    #: Moves overtaken by the user's next move before their rerun finished.
    early: int = 0
    #: Moves answered by a rerun that put their value in the share link (proof of effect).
    applied: int = 0
    errors: list[str] = field(default_factory=list)


def _rerun(widget_id: str | None = None, value: float | None = None,
           query: str = "", fragment_id: str = "") -> bytes:
    """Return a serialised ``BackMsg`` asking for a rerun (with one slider's value).

    ``fragment_id``: the fragment the slider was drawn in; as the browser does, the move
    then asks for a rerun of that fragment only.
    """
    from streamlit.proto.BackMsg_pb2 import BackMsg

    msg = BackMsg()
    msg.rerun_script.query_string = query
    msg.rerun_script.page_script_hash = ""
    if fragment_id:
        msg.rerun_script.fragment_id = fragment_id
    if widget_id is not None:
        state = msg.rerun_script.widget_states.widgets.add()
        state.id = widget_id
        state.double_array_value.data.append(float(value))
    return msg.SerializeToString()


def _link_number(x: float) -> str:
    """Return ``x`` as the share link writes it."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _slider_id(msg, key: str) -> str | None:
    """Return the id of the slider keyed ``key`` if ``msg`` (a ForwardMsg) draws it."""
    if msg.WhichOneof("type") != "delta" or msg.delta.WhichOneof("type") != "new_element":
        return None
    element = msg.delta.new_element
    if element.WhichOneof("type") == "slider" and element.slider.id.endswith(key):
        return element.slider.id
    return None


async def run_user(user: User, interval: float, duration: float, values) -> None:
    """Open a session, then move the lever every ``interval`` s for ``duration`` s."""
    import websockets
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    finished = ForwardMsg.ScriptFinishedStatus
    async with websockets.connect(f"{user.url}/_stcore/stream", subprotocols=["streamlit"],
                                  max_size=None, open_timeout=60) as ws:
        widget: list[str] = []
        first_done = asyncio.Event()
        current: list[int] = [-1]  # the move whose rerun the server is running
        query: list[str] = [""]  # the address bar the server last set
        asked: dict[int, float] = {}

        async def reader() -> None:
            async for raw in ws:
                msg = ForwardMsg()
                msg.ParseFromString(raw)
                kind = msg.WhichOneof("type")
                if kind == "page_info_changed":
                    query[0] = msg.page_info_changed.query_string
                elif kind == "delta" and not widget:
                    found = _slider_id(msg, LEVER_KEY)
                    if found:
                        widget.extend((found, msg.delta.fragment_id))
                elif kind == "script_finished":
                    if current[0] < 0:
                        first_done.set()
                    elif msg.script_finished in (finished.FINISHED_SUCCESSFULLY,
                                                 finished.FINISHED_FRAGMENT_RUN_SUCCESSFULLY):
                        # The rerun answered the move whose value the share link now
                        # holds; older moves still waiting were overtaken by it (a
                        # rerun asked for while another runs replaces it).
                        now = time.perf_counter()
                        done = [m for m in user.sent
                                if f"wind_build_rate={_link_number(asked[m])}&" in query[0] + "&"]
                        if done:
                            m = done[0]
                            user.response.append(now - user.sent.pop(m))
                            user.applied += 1
                            for old in [x for x in user.sent if x < m]:
                                user.sent.pop(old)
                                user.early += 1

        task = asyncio.create_task(reader())
        try:
            await ws.send(_rerun(query="lang=en&page=simulator"))
            await asyncio.wait_for(first_done.wait(), timeout=120)
            if not widget:
                user.errors.append(f"no slider {LEVER_KEY} on the page")
                return
            await asyncio.sleep(random.uniform(0, interval))
            end = time.perf_counter() + duration
            move = 0
            while time.perf_counter() < end:
                current[0] = move
                asked[move] = next(values)
                user.sent[move] = time.perf_counter()
                await ws.send(_rerun(widget[0], asked[move], fragment_id=widget[1]))
                move += 1
                await asyncio.sleep(interval)
            drain = time.perf_counter() + 60
            while user.sent and time.perf_counter() < drain:
                await asyncio.sleep(0.05)
        except Exception as exc:  # noqa: BLE001 - counted and printed, never hidden
            user.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            task.cancel()


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_servers(n: int, port: int) -> list[tuple[subprocess.Popen, int]]:
    """Start ``n`` app processes on 127.0.0.1 (consecutive ports from ``port``).

    The same command line and health wait as the deployment (``greenpath.app.deploy``).
    """
    from greenpath.app import deploy

    out = []
    for i in range(n):
        p = port + i if port else free_port()
        out.append((subprocess.Popen(deploy.command(p), cwd=ROOT, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL), p))
    for proc, p in out:
        try:
            deploy.wait_healthy(p, proc)
        except RuntimeError as exc:
            raise SystemExit(str(exc)) from None
    return out


async def warm(urls: list[str]) -> None:
    """One session per process first: model load and first runs are not measured."""
    import itertools

    values = itertools.count(start=400.0, step=0.25)
    await asyncio.gather(*(run_user(User(-1, u), 1.0, 1.0, values) for u in urls))


def main() -> None:
    """Run the load test and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between moves")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of moves")
    parser.add_argument("--processes", type=int, default=1, help="app processes to start")
    parser.add_argument("--port", type=int, default=0, help="first port (0: any free)")
    parser.add_argument("--url", action="append", default=[],
                        help="use running servers instead (ws://127.0.0.1:PORT)")
    args = parser.parse_args()
    if not 0 < args.duration <= 600 or not 0 < args.users <= 200:
        raise SystemExit("--duration must be 0-600 s and --users 1-200")
    for url in args.url:
        if urlsplit(url).hostname not in LOOPBACK:
            raise SystemExit(f"{url}: only loopback addresses are load-tested")
    import itertools

    servers = [] if args.url else start_servers(args.processes, args.port)
    urls = args.url or [f"ws://127.0.0.1:{p}" for _, p in servers]
    try:
        asyncio.run(warm(urls))
        pids = [proc.pid for proc, _ in servers]
        cpu0 = sum(cpu_seconds(p) for p in pids)
        t0 = time.perf_counter()
        # Values no user has set before: every move runs the model (nothing cached).
        values = itertools.count(start=100.0, step=0.25)
        users = [User(i, urls[i % len(urls)]) for i in range(args.users)]
        asyncio.run(_all(users, args.interval, args.duration, values))
        wall = time.perf_counter() - t0
        cpu = sum(cpu_seconds(p) for p in pids) - cpu0
        report(users, args, wall, cpu, [rss_mb(p) for p in pids], len(urls))
    finally:
        for proc, _ in servers:
            proc.terminate()
        for proc, _ in servers:
            proc.wait(timeout=30)


async def _all(users: list[User], interval: float, duration: float, values) -> None:
    await asyncio.gather(*(run_user(u, interval, duration, values) for u in users))


def report(users: list[User], args, wall: float, cpu: float, rss: list[float],
           processes: int) -> None:
    """Print the figures of the run."""
    times = sorted(x * 1000 for u in users for x in u.response)
    sent = sum(len(u.response) + u.early + len(u.sent) for u in users)
    dropped = sum(u.early + len(u.sent) for u in users)
    errors = [e for u in users for e in u.errors]
    print(f"{args.users} users, one move every {args.interval:g} s each for "
          f"{args.duration:g} s, {processes} app process(es): {sent} moves sent")
    if times:
        p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
        print(f"response (move sent -> rerun finished): median {statistics.median(times):.0f}"
              f" ms, p95 {p95:.0f} ms, max {times[-1]:.0f} ms (n={len(times)})")
    applied = sum(u.applied for u in users)
    print(f"moves applied (the share link the server set holds the new value): {applied} of "
          f"{len(times)} answered")
    print(f"dropped moves: {dropped} of {sent}; errors: {len(errors)}"
          + (f" (first: {errors[0]})" if errors else ""))
    if rss:
        cores = os.cpu_count() or 1
        print(f"server CPU: {cpu:.1f} s over {wall:.0f} s = {cpu / wall / cores:.0%} of "
              f"{cores} cores; {1000 * cpu / max(1, sent):.0f} ms per move; memory "
              + ", ".join(f"{x:.0f} MB" for x in rss) + " resident")
    print(f"(load average {os.getloadavg()[0]:.1f} at the end: other work on the machine "
          "disturbs these figures)")


if __name__ == "__main__":
    main()
