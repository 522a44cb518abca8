"""The watcher registrations that tell the poller which queues are on screen: a socket that died
without saying goodbye stops counting, and leaves nothing behind in Redis."""

from __future__ import annotations

import time

import time_machine

from wallboard.live import store
from wallboard.live.pbx import redis_connection


def test_a_dead_sockets_registration_expires_and_is_dropped():
    start = time.time()
    with time_machine.travel(start, tick=False) as traveller:
        store.watch_register("dead", [100, 101], ttl=15)
        store.heartbeat_round({"alive": [101]}, ttl=15)
        assert store.watched_queues([100, 101]) == {100, 101}
        traveller.shift(16)  # "dead" missed its heartbeats; "alive" beats again
        store.heartbeat_round({"alive": [101]}, ttl=15)
        assert store.watched_queues([100, 101]) == {101}
        members = redis_connection().zrange(store.key("watchers", 101), 0, -1)
        assert members == ["alive"]  # the dead one is gone from the set, not just expired
        assert store.clients_count() == 1


def test_a_queue_nobody_watches_any_more_leaves_no_key():
    store.watch_register("gone", [100], ttl=0.5)
    name = store.key("watchers", 100)
    ttl = redis_connection().ttl(name)
    assert 0 < ttl <= 2  # Redis removes the set itself soon after the last renewal
