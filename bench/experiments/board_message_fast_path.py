"""The wallboard with `board.message` events forwarded without Channels' per-event DB cleanup.

Channels 4.2+ runs `aclose_old_connections()` — a `sync_to_async(close_old_connections)` hop
through the single thread-sensitive executor — before *every* consumer handler. For a push to
1,000 boards that is 1,000 serialised thread hops per update, for a handler that touches no
database. This variant forwards `board.message` straight to the socket and leaves every other
event to Channels' normal dispatch.
"""

from channels.generic.websocket import AsyncWebsocketConsumer

from wallboard.asgi import application
from wallboard.live.consumers import LiveConsumer
from wallboard.live.push import EVENT_BOARD_MESSAGE


async def dispatch(self: LiveConsumer, message: dict) -> None:
    if message.get("type") == EVENT_BOARD_MESSAGE:
        await self.send(text_data=message["text"])
        return
    await AsyncWebsocketConsumer.dispatch(self, message)


LiveConsumer.dispatch = dispatch

__all__ = ["application"]
