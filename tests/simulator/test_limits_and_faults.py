"""Basic auth, the documented rate limit (per IP, sliding window, block time), injected faults."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import time
from urllib.parse import urlsplit

import pytest
import requests

from pbxapi.simulator.limiter import RateLimiter

from .conftest import PASSWORD, USER, url


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def request_from(sim, source_ip: str, path: str = "/api/queue/") -> int:
    """GET with a chosen loopback source address (127.0.0.0/8 all reach the server on Linux)."""
    parts = urlsplit(sim.url)
    connection = http.client.HTTPConnection(
        parts.hostname, parts.port, timeout=5, source_address=(source_ip, 0)
    )
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    try:
        connection.request("GET", path, headers={"Authorization": f"Basic {token}"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


# ------------------------------------------------------------------------------ auth


def test_every_route_needs_basic_auth(sim):
    for credentials in (None, (USER, "wrong"), ("other", PASSWORD)):
        response = requests.get(url(sim, "/api/queue/"), auth=credentials, timeout=5)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic realm=")
        assert "<html>" in response.text and PASSWORD not in response.text
    garbage = requests.get(
        url(sim, "/api/queue/"), headers={"Authorization": "Basic %%%"}, timeout=5
    )
    assert garbage.status_code == 401
    anonymous_post = requests.post(
        url(sim, "/api/data"), data={"key": "k", "value": "v"}, timeout=5
    )
    assert anonymous_post.status_code == 401
    assert requests.get(url(sim, "/api/queue/"), auth=(USER, PASSWORD), timeout=5).ok


# ------------------------------------------------------------------------------ limiter model


def test_limiter_refuses_exactly_the_21st_request_in_the_window():
    clock = FakeClock()
    limiter = RateLimiter(limit=20, window=5.0, block_seconds=1800.0, clock=clock)
    for _ in range(20):
        assert limiter.admit("10.0.0.1")
        clock.now += 0.2  # 20 requests spread over 4 s
    clock.now = 1000.0 + 4.99
    assert not limiter.admit("10.0.0.1")
    assert limiter.blocked_until("10.0.0.1") == pytest.approx(1004.99 + 1800)


def test_limiter_window_slides():
    clock = FakeClock()
    limiter = RateLimiter(limit=20, window=5.0, block_seconds=1800.0, clock=clock)
    for _ in range(20):
        assert limiter.admit("10.0.0.1")
        clock.now += 0.2
    # 1005.0: the first request (at 1000.0) has left the window; 19 remain, so one more fits.
    clock.now = 1005.0
    assert limiter.admit("10.0.0.1")
    assert not limiter.admit("10.0.0.1")


def test_limiter_block_is_not_extended_by_requests_during_it():
    clock = FakeClock()
    limiter = RateLimiter(limit=2, window=5.0, block_seconds=60.0, clock=clock)
    assert limiter.admit("ip") and limiter.admit("ip")
    assert not limiter.admit("ip")  # blocked until 1060
    for _ in range(59):
        clock.now += 1.0
        assert not limiter.admit("ip")
    clock.now = 1060.0
    assert limiter.admit("ip")
    assert limiter.admit("ip")  # the window started empty after the block
    assert not limiter.admit("ip")


def test_limiter_counts_ips_separately_and_can_be_reset():
    clock = FakeClock()
    limiter = RateLimiter(limit=1, window=5.0, block_seconds=60.0, clock=clock)
    assert limiter.admit("a") and limiter.admit("b")
    assert not limiter.admit("a")
    assert limiter.blocked_until("b") is None
    limiter.reset()
    assert limiter.admit("a")


# ------------------------------------------------------------------------------ limiter over HTTP


def test_http_limiter_blocks_on_the_21st_and_for_the_block_time(sim_factory, http):
    sim = sim_factory(rate_limit=20, rate_window=3.0, block_seconds=2.0)
    statuses = [http.get(url(sim, "/api/queue/")).status_code for _ in range(20)]
    assert statuses == [200] * 20
    blocked = http.get(url(sim, "/api/queue/"))
    blocked_at = time.monotonic()
    assert blocked.status_code == 403 and "<html>" in blocked.text
    # Everything is refused during the block, also requests that would be fine otherwise...
    while time.monotonic() < blocked_at + 1.0:
        assert http.get(url(sim, "/api/extension/outbounds")).status_code == 403
        time.sleep(0.05)
    # ...and those requests do not extend it.
    time.sleep(max(0.0, blocked_at + 2.2 - time.monotonic()))
    assert http.get(url(sim, "/api/queue/")).status_code == 200
    log = [entry.status for entry in sim.requests_log]
    assert log[:21] == [200] * 20 + [403]


def test_unauthenticated_requests_count_too(sim_factory):
    sim = sim_factory(rate_limit=5, rate_window=5.0, block_seconds=30.0)
    for _ in range(5):
        assert requests.get(url(sim, "/api/queue/"), timeout=5).status_code == 401
    authenticated = requests.get(url(sim, "/api/queue/"), auth=(USER, PASSWORD), timeout=5)
    assert authenticated.status_code == 403


def test_each_client_ip_has_its_own_budget(sim_factory):
    sim = sim_factory(rate_limit=3, rate_window=5.0, block_seconds=30.0)
    assert [request_from(sim, "127.0.0.1") for _ in range(4)] == [200, 200, 200, 403]
    assert [request_from(sim, "127.0.0.2") for _ in range(3)] == [200, 200, 200]
    assert request_from(sim, "127.0.0.1") == 403
    assert {entry.ip for entry in sim.requests_log} == {"127.0.0.1", "127.0.0.2"}


def test_scripted_block_and_unblock(sim):
    sim.centre.block_ip("127.0.0.1", 30)
    assert request_from(sim, "127.0.0.1") == 403
    assert request_from(sim, "127.0.0.3") == 200
    sim.centre.unblock_all()
    assert request_from(sim, "127.0.0.1") == 200


def test_requests_log_records_every_request(sim, http):
    before = time.monotonic()
    http.get(url(sim, "/api/queue/status"), params={"queue": 100})
    http.get(url(sim, "/api/nothing"))
    requests.get(url(sim, "/api/queue/"), timeout=5)
    entries = sim.requests_log[-3:]
    assert [(e.ip, e.method, e.path, e.status) for e in entries] == [
        ("127.0.0.1", "GET", "/api/queue/status", 200),
        ("127.0.0.1", "GET", "/api/nothing", 404),
        ("127.0.0.1", "GET", "/api/queue/", 401),
    ]
    assert all(e.at >= before for e in entries)
    assert len(sim.requests_log) == 3


# ------------------------------------------------------------------------------ faults


def test_fault_html500(sim, http):
    sim.centre.set_fault("html500")
    response = http.get(url(sim, "/api/queue/"))
    assert response.status_code == 500
    assert response.headers["Content-Type"].startswith("text/html")
    sim.centre.set_fault(None)
    assert http.get(url(sim, "/api/queue/")).status_code == 200


def test_fault_forbidden_answers_like_a_block(sim, http):
    sim.centre.set_fault("forbidden")
    assert http.get(url(sim, "/api/queue/")).status_code == 403
    assert requests.get(url(sim, "/api/queue/"), timeout=5).status_code == 403


def test_fault_truncated_sends_half_a_json_body(sim, http):
    sim.centre.set_fault("truncated")
    response = http.get(url(sim, "/api/extension"))
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == len(response.content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)
    assert response.text.startswith('[{"extension": "200"')


def test_fault_down_drops_the_connection(sim, http):
    sim.centre.set_fault("down")
    with pytest.raises(requests.ConnectionError):
        http.get(url(sim, "/api/queue/"), timeout=5)
    assert sim.requests_log[-1].status == 0
    sim.centre.set_fault(None)
    assert http.get(url(sim, "/api/queue/"), timeout=5).status_code == 200


def test_fault_timeout_stalls_past_the_read_timeout(sim, http):
    sim.centre.set_fault("timeout")  # the fixture's fault_delay is 1 s
    with pytest.raises(requests.ReadTimeout):
        http.get(url(sim, "/api/queue/"), timeout=(2, 0.3))
    started = time.monotonic()
    patient = http.get(url(sim, "/api/queue/"), timeout=5)
    assert patient.status_code == 200
    assert time.monotonic() - started >= 0.9


def test_a_stalled_answer_is_logged_when_its_request_arrived(sim, http):
    sim.centre.set_fault("timeout")  # the fixture's fault_delay is 1 s
    sent = time.monotonic()
    http.get(url(sim, "/api/queue/"), timeout=5)
    # The rate limit counts arrivals: the log must too, or a slow PBX's log shows bursts.
    assert sim.requests_log[-1].at - sent < 0.5


def test_unknown_fault_mode_is_refused(sim):
    with pytest.raises(ValueError, match="unknown fault mode"):
        sim.centre.set_fault("slow")


def test_fault_html200_answers_ok_with_a_page_instead_of_json(sim, http):
    sim.centre.set_fault("html200")
    response = http.get(url(sim, "/api/queue/"))
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)
    sim.centre.set_fault(None)
    assert isinstance(http.get(url(sim, "/api/queue/")).json(), list)


def _raw_get(sim, path: str) -> socket.socket:
    """Send a GET by hand and return the socket, so a test can watch the answer arrive."""
    parts = urlsplit(sim.url)
    connection = socket.create_connection((parts.hostname, parts.port), timeout=5)
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    connection.sendall(
        f"GET {path} HTTP/1.1\r\nHost: pbx\r\nAuthorization: Basic {token}\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    return connection


def _read_all(connection: socket.socket) -> bytes:
    chunks = []
    while chunk := connection.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_fault_trickle_sends_the_answer_a_byte_at_a_time_until_it_is_cleared(sim_factory):
    sim = sim_factory(fault_trickle_seconds=0.2)
    sim.centre.set_fault("trickle")
    connection = _raw_get(sim, "/api/queue/")
    try:
        started = time.monotonic()
        first = connection.recv(65536)
        second = connection.recv(65536)
        # Each read gets one byte, and each comes well within a read timeout.
        assert (first, second) == (b"H", b"T")
        assert time.monotonic() - started < 1.0
        assert sim.requests_log[-1].status == 200
        sim.centre.set_fault(None)  # the rest arrives at once
        rest = _read_all(connection)
    finally:
        connection.close()
    head, _, body = (first + second + rest).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"Content-Type: application/json" in head
    assert isinstance(json.loads(body), list)


def test_fault_trickle_answers_are_never_fast_while_it_lasts(sim_factory):
    sim = sim_factory(fault_trickle_seconds=0.05)
    sim.centre.set_fault("trickle")
    connection = _raw_get(sim, "/api/extension/outbounds")
    try:
        received = b""
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            received += connection.recv(65536)
    finally:
        connection.close()
    # 0.5 s at a byte per 0.05 s: about ten bytes, nowhere near a whole answer.
    assert 3 <= len(received) <= 15
    assert b"HTTP/1.1 200 OK\r\n".startswith(received)
