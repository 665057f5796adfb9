"""The aiohttp transport under python-telegram-bot: what it raises when the wire fails."""

from __future__ import annotations

import asyncio
import socket

import pytest
from telegram.error import NetworkError, TimedOut
from telegram.request import RequestData

from bot.adapters.telegram.transport import AiohttpRequest


async def test_a_bot_api_that_never_answers_is_a_timeout_not_a_hang() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    request = AiohttpRequest(read_timeout=0.2)
    await request.initialize()
    try:
        with pytest.raises(TimedOut):
            await request.do_request(f"http://127.0.0.1:{port}/botX/getMe", "POST", RequestData())
    finally:
        await request.shutdown()
        server.close()


async def test_a_refused_connection_is_a_network_error() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    request = AiohttpRequest()
    await request.initialize()
    try:
        with pytest.raises(NetworkError):
            await request.do_request(f"http://127.0.0.1:{port}/botX/getMe", "POST", RequestData())
    finally:
        await request.shutdown()


async def test_a_transport_used_before_start_up_says_so() -> None:
    with pytest.raises(RuntimeError):
        await AiohttpRequest().do_request("http://127.0.0.1:1/botX/getMe", "POST")
