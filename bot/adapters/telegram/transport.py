"""An aiohttp transport for python-telegram-bot, in place of its httpx one.

Why hand-written: python-telegram-bot ships only `HTTPXRequest`, and `BaseRequest` is the
hook it documents for another HTTP library. With a real round trip, most of the bot's CPU
per update was httpx and httpcore (their pool bookkeeping, anyio shims and stream objects
for every call, bench/telegram_throughput.py); aiohttp's keep-alive client does the same
POST for a fraction of that. Everything above the wire (building parameters, parsing the
answer, turning Bot API errors into exceptions) stays python-telegram-bot's own.

Timeouts and failures map to what PTB's own transport raises: `TimedOut` for a timeout,
`NetworkError` for anything that broke the connection.

`form` makes the body of the adapter's calls that skip PTB's Bot methods (adapter._raw):
`Bot._post` (defaults, `RequestParameter.from_input` per value) and a Telegram object per
keyboard button were about a third of the CPU of each reply sent (bench 2). The call still
goes through `BaseRequest.post`, so answers and errors are PTB's own.
"""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import urlencode

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData
from telegram.request._requestparameter import RequestParameter
from yarl import URL

# PTB's own defaults for HTTPXRequest.
READ_TIMEOUT = 5.0
WRITE_TIMEOUT = 5.0
CONNECT_TIMEOUT = 5.0
MEDIA_WRITE_TIMEOUT = 20.0


class AiohttpRequest(BaseRequest):
    """One keep-alive aiohttp session; `connections` bounds the sockets held open."""

    __slots__ = ("_connections", "_read_timeout", "_session")

    def __init__(self, connections: int = 256, read_timeout: float | None = READ_TIMEOUT):
        self._connections = connections
        self._read_timeout = read_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._connections, enable_cleanup_closed=True)
            # Telegram's answers are JSON we hand to PTB as bytes: no cookies, no decoding.
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                headers={"User-Agent": self.USER_AGENT},
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("AiohttpRequest is not initialized")
        files = request_data is not None and request_data.contains_files
        read = self._read_timeout if isinstance(read_timeout, DefaultValue) else read_timeout
        write = write_timeout
        if isinstance(write, DefaultValue):
            write = MEDIA_WRITE_TIMEOUT if files else WRITE_TIMEOUT
        connect = CONNECT_TIMEOUT if isinstance(connect_timeout, DefaultValue) else connect_timeout
        # aiohttp has no separate write timeout (nor a pool timeout, which PTB's transport
        # needs for its finite pool): the whole call gets connect + write + read.
        parts = [t for t in (connect, write, read) if t is not None]
        total = sum(parts) if len(parts) == 3 else None
        timeout = aiohttp.ClientTimeout(total=total, connect=connect, sock_read=read)
        body: aiohttp.FormData | bytes | None = None
        headers = None
        if request_data is not None and files:
            body = _form(request_data)
        elif request_data is not None:
            # The same x-www-form-urlencoded body aiohttp makes of a dict, without its
            # FormData on the way (most of aiohttp's CPU per call, bench 2's profile).
            body = urlencode(request_data.json_parameters).encode()
            headers = _URLENCODED
        try:
            async with self._session.request(
                method, _url(url), data=body, headers=headers, timeout=timeout
            ) as res:
                return res.status, await res.read()
        except TimeoutError as error:
            raise TimedOut from error
        except aiohttp.ClientError as error:
            # The class name only: some of aiohttp's messages hold the URL, and with it the token.
            raise NetworkError(f"aiohttp.{type(error).__name__}") from error


_URLENCODED = {"Content-Type": "application/x-www-form-urlencoded"}


def form(params: dict[str, Any]) -> RequestData:
    """Plain parameters (strings, numbers, a keyboard's dict) as PTB's request body, without
    `RequestParameter.from_input`'s conversions (Telegram objects, dates, files): values
    go out as PTB sends them, strings as they are and the rest as JSON. None is left out."""
    return RequestData(
        [RequestParameter(name, value, None) for name, value in params.items() if value is not None]
    )


@functools.lru_cache(maxsize=64)
def _url(url: str) -> URL:
    """The parsed URL of a Bot API method (a handful, each called over and over)."""
    return URL(url)


def _form(request_data: RequestData) -> aiohttp.FormData:
    """multipart/form-data: the JSON-encoded parameters, then each file as its own part."""
    form = aiohttp.FormData(quote_fields=False)
    for name, value in request_data.json_parameters.items():
        form.add_field(name, value)
    for name, (filename, content, mimetype) in request_data.multipart_data.items():
        form.add_field(name, content, filename=filename, content_type=mimetype)
    return form
