"""One consumer: join the group on connect, forward each event's pre-serialised text."""

from channels.generic.websocket import AsyncWebsocketConsumer

GROUP = "broadcast"
EVENT_TYPE = "board.message"  # the same event type the wallboard uses


class BroadcastConsumer(AsyncWebsocketConsumer):
    groups = [GROUP]  # joined on connect, left on disconnect by the base class

    async def board_message(self, event: dict) -> None:
        await self.send(text_data=event["text"])
