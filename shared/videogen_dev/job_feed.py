"""A user's job events over Supabase Realtime, as a frontend receives them, for sync code.

supabase-py's ``realtime`` client (asyncio only) runs in a background thread, joined to
the owner's private topic ``user:<uid>:jobs`` with the user's access token; every
``broadcast`` lands in a queue the caller reads with a timeout. When the channel is not
(or no longer) subscribed, ``subscribed`` says so and the caller falls back to polling
the job over HTTP — what the README tells frontends to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from typing import Any


class JobFeed:
    """The broadcasts on ``user:<uid>:jobs``, received in a background thread."""

    def __init__(self, supabase_url: str, api_key: str, access_token: str, user_id: str) -> None:
        self.url = f"{supabase_url.rstrip('/')}/realtime/v1"
        self.api_key, self.access_token = api_key, access_token
        self.topic = f"user:{user_id}:jobs"
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.state = "CONNECTING"
        self.error: str | None = None
        self._loop = asyncio.new_event_loop()
        self._client: Any = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def subscribed(self) -> bool:
        return self.state == "SUBSCRIBED"

    def start(self, timeout: float = 10.0) -> bool:
        """Join the topic; True once subscribed (False: use polling, ``error`` says why)."""
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._join(), self._loop)
        try:
            future.result(timeout)
        except Exception as exc:  # an unreachable server, a refused join: fall back
            self.state, self.error = "CHANNEL_ERROR", self.error or str(exc) or type(exc).__name__
        return self.subscribed

    async def _join(self) -> None:
        from realtime import AsyncRealtimeClient

        self._client = AsyncRealtimeClient(self.url, self.api_key, auto_reconnect=True)
        await self._client.set_auth(self.access_token)
        channel = self._client.channel(self.topic, {"config": {"private": True}})
        channel.on_broadcast("*", lambda message: self.events.put(message["payload"]))

        def on_state(state: Any, error: Exception | None) -> None:
            self.state = str(getattr(state, "value", state))
            if error is not None:
                self.error = str(error)

        await channel.subscribe(on_state)

    def next(self, timeout: float) -> dict[str, Any] | None:
        """The next event's payload (a job_events row), or None after ``timeout`` seconds."""
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        """Leave and stop the thread."""
        if self._client is not None:
            future = asyncio.run_coroutine_threadsafe(self._client.close(), self._loop)
            with contextlib.suppress(Exception):  # the server may have closed it already
                future.result(5)
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        if not self._loop.is_running():
            self._loop.close()
