"""A fake Slack Web API on 127.0.0.1 for the Slack adapter's end-to-end tests.

Serves `/api/<method>` (form, query or JSON arguments, like slack_sdk sends them), the
upload URL of the files_upload_v2 flow and slash-command/button `response_url`s. Every call
is recorded with the workspace whose token made it; messages and views are checked against
Block Kit's documented limits and rejected with `ok: false` like Slack would
(`invalid_blocks`).

Like Slack, it knows several workspaces: each bot token belongs to one and carries the
scopes it was granted, and a method called without its scope answers `missing_scope`.
The single-workspace token `TOKEN` has the scopes of slack/manifest.yml. `oauth.v2.access`
trades a code from `grant()` (what Slack hands the installer's browser after "Allow") for
a new bot token, checking the app's client id and secret like Slack does.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

TOKEN = "xoxb-test-token"
APP_TOKEN = "xapp-test-token"
BOT_USER = "UBOT"
TEAM = "T0TEAM"
CLIENT_ID = "1234.5678"
CLIENT_SECRET = "test-client-secret"
APP_ID = "A0HIPCOACH"
MANIFEST = Path(__file__).resolve().parent.parent / "slack" / "manifest.yml"

# The bot scope each Web API method needs (https://docs.slack.dev/reference/methods);
# conversations.info needs the read scope of the conversation's kind.
METHOD_SCOPES: dict[str, str | None] = {
    "auth.test": None,
    "chat.postMessage": "chat:write",
    "chat.postEphemeral": "chat:write",
    "chat.update": "chat:write",
    "conversations.open": "im:write",
    "conversations.info": "channels:read",
    "files.getUploadURLExternal": "files:write",
    "files.completeUploadExternal": "files:write",
    "users.info": "users:read",
    "views.publish": None,
}
INFO_SCOPES = {"C": "channels:read", "G": "groups:read", "D": "im:read"}


def manifest_bot_scopes() -> set[str]:
    manifest = yaml.safe_load(MANIFEST.read_text())
    return set(manifest["oauth_config"]["scopes"]["bot"])


@dataclass
class Grant:
    """One workspace's bot token, as Slack knows it."""

    team_id: str
    scopes: frozenset[str]
    enterprise_id: str | None = None
    org_wide: bool = False  # an Enterprise Grid org-wide install
    bot_user_id: str = BOT_USER


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    team: str | None = None  # the workspace whose token made the call

    def __getitem__(self, key: str) -> Any:
        return self.args[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.args.get(key, default)

    @property
    def text(self) -> str:
        """Everything a person would read: fallback text, block texts, button labels."""
        parts = [str(self.args.get("text") or ""), str(self.args.get("initial_comment") or "")]
        for block in self.blocks:
            parts.extend(_texts(block))
        return "\n".join(p for p in parts if p)

    @property
    def blocks(self) -> list[dict[str, Any]]:
        blocks = self.args.get("blocks")
        if blocks is None and isinstance(self.args.get("view"), dict):
            blocks = self.args["view"].get("blocks")
        return list(blocks or [])

    @property
    def buttons(self) -> list[dict[str, Any]]:
        return [
            element
            for block in self.blocks
            if block.get("type") == "actions"
            for element in block.get("elements", [])
            if element.get("type") == "button"
        ]


def _texts(obj: Any) -> list[str]:
    if isinstance(obj, dict):
        out = []
        if isinstance(obj.get("text"), str):
            out.append(obj["text"])
        for value in obj.values():
            if isinstance(value, dict | list):
                out.extend(_texts(value))
        return out
    if isinstance(obj, list):
        return [t for item in obj for t in _texts(item)]
    return []


def block_problems(blocks: Any, *, max_blocks: int = 50) -> list[str]:
    """Block Kit limits Slack enforces (https://docs.slack.dev/reference/block-kit)."""
    if not isinstance(blocks, list):
        return ["blocks must be a list"]
    problems = []
    if len(blocks) > max_blocks:
        problems.append(f"{len(blocks)} blocks (max {max_blocks})")
    action_ids: set[str] = set()
    for block in blocks:
        kind = block.get("type")
        if kind == "section":
            text = (block.get("text") or {}).get("text", "")
            if not text or len(text) > 3000:
                problems.append(f"section text of {len(text)} chars")
        if kind == "header" and len(block["text"]["text"]) > 150:
            problems.append("header text too long")
        if kind == "actions":
            elements = block.get("elements") or []
            if not elements or len(elements) > 25:
                problems.append(f"actions block with {len(elements)} elements")
            for element in elements:
                label = element.get("text", {}).get("text", "")
                if not label or len(label) > 75:
                    problems.append(f"button text of {len(label)} chars")
                if len(element.get("value", "")) > 2000:
                    problems.append("button value over 2000 chars")
                action_id = element.get("action_id")
                if action_id is None or len(action_id) > 255:
                    problems.append("bad action_id")
                elif action_id in action_ids:
                    problems.append(f"duplicate action_id {action_id}")
                action_ids.add(action_id)
                if "url" not in element and "value" not in element:
                    problems.append("button without value or url")
    return problems


@dataclass
class FakeSlack:
    """Start with `await fake.start()`; `fake.api_url` goes into SLACK_API_URL."""

    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    creators: dict[str, str] = field(default_factory=dict)  # channel -> creator user id
    calls: list[Call] = field(default_factory=list)
    uploads: dict[str, bytes] = field(default_factory=dict)
    # method -> (status, body, headers) served once instead of the normal answer
    fail_next: dict[str, tuple[int, dict[str, Any] | str, dict[str, str]]] = field(
        default_factory=dict
    )
    members: set[str] | None = None  # channels the bot is in (None: all)
    # token -> the error Slack now answers every call made with it (revoked, uninstalled)
    dead_tokens: dict[str, str] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)  # bot token -> its workspace
    codes: dict[str, Grant] = field(default_factory=dict)  # OAuth code -> what it grants
    sockets: list[web.WebSocketResponse] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _ts: Any = field(default_factory=lambda: itertools.count(1))
    base: str = ""

    @property
    def api_url(self) -> str:
        return f"{self.base}/api/"

    def __post_init__(self) -> None:
        self.grants.setdefault(TOKEN, Grant(TEAM, frozenset(manifest_bot_scopes())))

    def grant(
        self,
        team_id: str,
        scopes: set[str],
        enterprise_id: str | None = None,
        *,
        org_wide: bool = False,
    ) -> str:
        """The installer pressed "Allow": the code Slack sends to the redirect URL. An
        org-wide grant is for every workspace of the org `enterprise_id`."""
        code = f"code-{team_id}-{next(self._ts)}"
        self.codes[code] = Grant(team_id, frozenset(scopes), enterprise_id, org_wide)
        return code

    def tokens_of(self, team_id: str) -> list[str]:
        return [t for t, g in self.grants.items() if g.team_id == team_id]

    def uninstall(self, team_id: str) -> None:
        """Slack revokes every token of the workspace that removed the app."""
        for token in self.tokens_of(team_id):
            self.dead_tokens[token] = "token_revoked"

    async def start(self) -> None:
        app = web.Application(client_max_size=20 * 1024 * 1024)
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_post("/respond/{key}", self._respond)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        for ws in self.sockets:
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- queries for tests ----------------------------------------------------------------

    def of(self, method: str, **match: Any) -> list[Call]:
        return [
            c
            for c in self.calls
            if c.method == method and all(c.args.get(k) == v for k, v in match.items())
        ]

    def last(self, method: str, **match: Any) -> Call:
        found = self.of(method, **match)
        assert found, f"no {method} call matching {match}; calls: {[c.method for c in self.calls]}"
        return found[-1]

    async def wait_for(
        self, predicate: Callable[[Call], bool], *, after: int = 0, timeout: float = 10
    ) -> Call:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for call in self.calls[after:]:
                if predicate(call):
                    return call
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(
                    f"timed out; calls after {after}: {[c.method for c in self.calls[after:]]}"
                )
            await asyncio.sleep(0.02)

    def respond_url(self, key: str) -> str:
        return f"{self.base}/respond/{key}"

    # --- handlers -------------------------------------------------------------------------

    async def _args(self, request: web.Request) -> dict[str, Any]:
        args: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                args.update(body)
        elif request.can_read_body:
            form = await request.post()
            args.update({k: v for k, v in form.items() if isinstance(v, str)})
        for key in ("blocks", "view", "files", "attachments"):
            if isinstance(args.get(key), str):
                args[key] = json.loads(args[key])
        return args

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if method == "oauth.v2.access":
            return web.json_response(await self._oauth_v2_access(request))
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if sent in self.dead_tokens:
            self.calls.append(Call(method, {"_refused": self.dead_tokens[sent]}))
            return web.json_response({"ok": False, "error": self.dead_tokens[sent]})
        if method == "apps.connections.open":
            if sent != APP_TOKEN:
                return web.json_response({"ok": False, "error": "invalid_auth"})
            grant = None
        else:
            grant = self.grants.get(sent)
            if grant is None:
                return web.json_response({"ok": False, "error": "invalid_auth"})
        args = await self._args(request)
        if grant is not None:
            args["_team"] = grant.team_id
            args["_enterprise"] = grant.enterprise_id
            args["_org_wide"] = grant.org_wide
        self.calls.append(Call(method, args, grant.team_id if grant else None))
        if grant is not None:
            needed = METHOD_SCOPES.get(method)
            if method == "conversations.info":
                needed = INFO_SCOPES.get(str(args.get("channel", "C"))[:1], needed)
            if needed is not None and needed not in grant.scopes:
                return web.json_response({"ok": False, "error": "missing_scope", "needed": needed})
        if method in self.fail_next:
            status, body, headers = self.fail_next.pop(method)
            if isinstance(body, str):
                return web.Response(status=status, text=body, headers=headers)
            return web.json_response(body, status=status, headers=headers)
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        return web.json_response(handler(args))

    def _m_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        team = args.get("_team") or TEAM
        answer = {
            "ok": True,
            "user_id": BOT_USER,
            "bot_id": f"B{team}",
            "team_id": team,
            "user": "hipcoach",
            "app_id": APP_ID,
            "is_enterprise_install": bool(args.get("_org_wide")),
        }
        if args.get("_enterprise"):
            answer["enterprise_id"] = args["_enterprise"]
        return answer

    async def _oauth_v2_access(self, request: web.Request) -> dict[str, Any]:
        """https://docs.slack.dev/reference/methods/oauth.v2.access"""
        args = await self._args(request)
        basic = request.headers.get("Authorization", "").removeprefix("Basic ")
        client = base64.b64decode(basic).decode() if basic else ""
        client = client or f"{args.get('client_id')}:{args.get('client_secret')}"
        self.calls.append(Call("oauth.v2.access", {**args, "_client": client.split(":")[0]}))
        if client != f"{CLIENT_ID}:{CLIENT_SECRET}":
            return {"ok": False, "error": "invalid_client_id"}
        grant = self.codes.pop(str(args.get("code")), None)
        if grant is None:
            return {"ok": False, "error": "invalid_code"}
        token = f"xoxb-{grant.team_id}-{next(self._ts)}"
        self.grants[token] = grant
        return {
            "ok": True,
            "access_token": token,
            "token_type": "bot",
            "scope": ",".join(sorted(grant.scopes)),
            "bot_user_id": grant.bot_user_id,
            "app_id": APP_ID,
            # An org-wide install names the org, not one of its workspaces.
            "team": None if grant.org_wide else {"id": grant.team_id, "name": "Runners"},
            "enterprise": {"id": grant.enterprise_id} if grant.enterprise_id else None,
            "is_enterprise_install": grant.org_wide,
            "authed_user": {"id": f"U{grant.team_id}INSTALLER"},
        }

    def _m_apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": self.base.replace("http://", "ws://") + "/socket"}

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        """Socket Mode: say hello, then record every acknowledgement the app sends."""
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.sockets.append(ws)
        await ws.send_json({"type": "hello", "num_connections": 1})
        async for message in ws:
            if message.type == web.WSMsgType.TEXT:
                self.calls.append(Call("socket.ack", json.loads(message.data)))
        return ws

    async def socket_send(self, envelope: dict[str, Any]) -> None:
        await self.sockets[-1].send_json(envelope)

    def _message_checks(self, args: dict[str, Any]) -> dict[str, Any] | None:
        if not args.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        channel = str(args["channel"])
        if self.members is not None and not channel.startswith("D") and channel not in self.members:
            return {"ok": False, "error": "not_in_channel"}
        if not args.get("text") and not args.get("blocks"):
            return {"ok": False, "error": "no_text"}
        problems = block_problems(args.get("blocks", []))
        if problems:
            return {"ok": False, "error": "invalid_blocks", "errors": problems}
        return None

    def _next_ts(self) -> str:
        return f"1700000000.{next(self._ts):06d}"

    def _m_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        error = self._message_checks(args)
        if error:
            return error
        ts = self._next_ts()
        args["_ts"] = ts
        return {"ok": True, "channel": args["channel"], "ts": ts}

    def _m_chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        error = self._message_checks(args)
        if error:
            return error
        if not args.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        ts = self._next_ts()
        args["_ts"] = ts
        return {"ok": True, "message_ts": ts}

    def _m_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        error = self._message_checks(args)
        if error:
            return error
        if not args.get("ts"):
            return {"ok": False, "error": "message_not_found"}
        return {"ok": True, "channel": args["channel"], "ts": args["ts"]}

    def _m_views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        view = args.get("view")
        if not args.get("user_id") or not isinstance(view, dict) or view.get("type") != "home":
            return {"ok": False, "error": "invalid_arguments"}
        problems = block_problems(view.get("blocks", []), max_blocks=100)
        if problems:
            return {"ok": False, "error": "invalid_blocks", "errors": problems}
        return {"ok": True, "view": {"id": "V1", **view}}

    def _m_users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(args.get("user")))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": {"id": args["user"], **user}}

    def _m_conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "channel": {"id": f"D{args.get('users')}"}}

    def _m_conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel"))
        return {"ok": True, "channel": {"id": channel, "creator": self.creators.get(channel, "")}}

    def _m_files_getUploadURLExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("filename") or not str(args.get("length", "")).isdigit():
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{next(self._ts)}"
        return {"ok": True, "upload_url": f"{self.base}/upload/{file_id}", "file_id": file_id}

    def _m_files_completeUploadExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        files = args.get("files") or []
        if not files or any(f.get("id") not in self.uploads for f in files):
            return {"ok": False, "error": "file_not_found"}
        args["_data"] = [self.uploads[f["id"]] for f in files]
        return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files]}

    async def _upload(self, request: web.Request) -> web.Response:
        data = await request.read()
        self.uploads[request.match_info["file_id"]] = data
        self.calls.append(Call("upload", {"file_id": request.match_info["file_id"]}))
        return web.Response(text=f"OK - {len(data)}")

    async def _respond(self, request: web.Request) -> web.Response:
        body = await request.json()
        problems = block_problems(body.get("blocks", []))
        self.calls.append(Call("respond", {"key": request.match_info["key"], **body}))
        if problems:
            return web.Response(status=400, text="invalid_blocks")
        return web.Response(text="ok")
