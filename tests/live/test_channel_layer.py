"""The configured pub/sub channel layer: settings reach redis-py, and an idle subscriber (a TV on
a quiet board) survives longer than the socket timeout."""

from __future__ import annotations

import asyncio

from channels.layers import get_channel_layer

from wallboard.live import push


async def test_the_host_settings_reach_redis_py_and_an_idle_subscription_survives(settings):
    hosts = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]
    settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [{**hosts[0], "socket_timeout": 0.5}]
    settings.CHANNEL_LAYERS = {**settings.CHANNEL_LAYERS}  # tell channels it changed
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("queue.1", channel)

    shard = layer._get_layer()._shards[0]
    pool = shard._redis.connection_pool
    assert pool.connection_kwargs["socket_timeout"] == 0.5
    assert pool.connection_kwargs["socket_keepalive"] is True
    assert pool.max_connections == hosts[0]["max_connections"]

    await asyncio.sleep(1.5)  # three socket timeouts with nothing to read
    await layer.group_send("queue.1", push.board_event('{"type":"snapshot"}'))
    message = await asyncio.wait_for(layer.receive(channel), timeout=5)
    assert message == {"type": "board.message", "text": '{"type":"snapshot"}'}
    await layer.group_discard("queue.1", channel)
    await layer.flush()
