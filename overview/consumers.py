"""The overview's WebSocket: staff with the view permission only; pushes a snapshot whenever it changes."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from overview.live import GROUP, current
from overview.permissions import may_view

CLOSE_FORBIDDEN = 4403


class OverviewConsumer(AsyncJsonWebsocketConsumer):
    ticker: asyncio.Task | None = None
    last: dict[str, Any] | None = None

    async def connect(self) -> None:
        if not await database_sync_to_async(may_view)(self.scope.get("user")):
            await self.close(code=CLOSE_FORBIDDEN)  # before accept: the handshake is refused with 403
            return
        await self.channel_layer.group_add(GROUP, self.channel_name)
        await self.accept()
        self.ticker = asyncio.create_task(self._poll())

    async def disconnect(self, code: int) -> None:
        if self.ticker is not None:
            self.ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.ticker
        await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """The page sends nothing; anything it does send is ignored."""

    async def overview_refresh(self, event: dict[str, Any]) -> None:
        await self._push()

    async def _poll(self) -> None:
        while True:
            await self._push()
            await asyncio.sleep(settings.OVERVIEW_REFRESH_SECONDS)

    async def _push(self) -> None:
        data = await database_sync_to_async(current)()
        content = {key: value for key, value in data.items() if key != "generated_at"}
        if content != self.last:  # only changes are pushed (the page re-renders on each message)
            self.last = content
            await self.send_json(data)
