"""The multi-process deployment of the app (:mod:`greenpath.app.deploy`)."""

from __future__ import annotations

import socket
import urllib.request

import pytest

from greenpath.app import deploy


def test_process_count_follows_the_cores():
    assert deploy.process_count("auto", available=2) == 2
    assert deploy.process_count("auto", available=64) == deploy.MAX_AUTO
    assert deploy.process_count("auto") == min(deploy.MAX_AUTO, deploy.cores())
    assert deploy.process_count("3") == 3
    for bad in ("0", "-1", "two"):
        with pytest.raises(ValueError, match="whole number"):
            deploy.process_count(bad)


def test_nginx_config_is_sticky_and_upgrades_websockets():
    text = deploy.nginx_config(deploy.ports(3, 9000))
    for port in (9000, 9001, 9002):
        assert f"server 127.0.0.1:{port};" in text
    assert "server 127.0.0.1:9003;" not in text
    assert "hash $gp_route consistent;" in text
    assert 'add_header Set-Cookie "gp_route=$gp_route;' in text
    assert "proxy_set_header Upgrade $http_upgrade;" in text
    assert text.count("{") == text.count("}")


def _free_ports(n: int) -> int:
    """Return the first of ``n`` consecutive free local ports."""
    for first in range(18_600, 19_600, 7):
        try:
            socks = []
            for p in range(first, first + n):
                s = socket.socket()
                s.bind(("127.0.0.1", p))
                socks.append(s)
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return first
    raise RuntimeError("no free local ports")


def test_serve_starts_one_healthy_process_per_port_and_stops_them():
    ports = deploy.ports(2, _free_ports(2))
    procs = deploy.start(ports)
    try:
        for port in ports:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health",
                                        timeout=10) as r:
                assert r.status == 200
    finally:
        deploy.stop(procs)
    assert all(p.poll() is not None for p in procs)
