"""Putting websocket messages (docs/websocket.md) on the channel layer.

Each update is serialised once, here; the layer event carries the final text frame, so a
consumer only forwards it and a thousand TVs cost one ``json.dumps``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

GROUP_PBX = "pbx"
EVENT_BOARD_MESSAGE = "board.message"


def queue_group(queue: int) -> str:
    return f"queue.{queue}"


def frame(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def snapshot_frame(snapshot: dict[str, Any]) -> str:
    return frame(
        {
            "type": "snapshot",
            "queue": snapshot["queue"],
            "version": snapshot["version"],
            "data": snapshot,
        }
    )


def pbx_frame(state: dict[str, Any]) -> str:
    return frame({"type": "pbx", "data": state})


def board_event(text: str) -> dict[str, Any]:
    return {"type": EVENT_BOARD_MESSAGE, "text": text}


def snapshot_publish(snapshot: dict[str, Any]) -> None:
    event = board_event(snapshot_frame(snapshot))
    # Queue and version ride along (outside the frame) so a consumer can drop a snapshot it
    # already sent from Redis without parsing the text.
    event.update(queue=snapshot["queue"], version=snapshot["version"])
    _group_send(queue_group(snapshot["queue"]), event)


def pbx_state_publish(state: dict[str, Any]) -> None:
    _group_send(GROUP_PBX, board_event(pbx_frame(state)))


def _group_send(group: str, event: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    # Each process's hub receives the event once, on its own channel, and hands it to the
    # connections it holds in this group (wallboard.live.hub).
    event["group"] = group
    try:
        async_to_sync(layer.group_send)(group, event)
    except Exception:
        # The snapshot is already in Redis: a board that misses this push gets it on its next
        # resync/reconnect. A push failure must not stop the poller.
        logger.exception("Could not publish to channel-layer group %s", group)
