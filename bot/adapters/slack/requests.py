"""What a Slack request must look like before the coach acts on it.

Slack retries any request that does not get a 2xx, so the adapter acknowledges every kind
Slack may send, also those it has no use for. But a correctly signed request whose body is
not what Slack documents (no user, no actions, a payload that is not a JSON object) is a
bug or a forgery: it gets a plain 400 over HTTP, and is dropped in Socket Mode, with one
log line naming the problem and nothing of the content.

The body is parsed with Bolt's own parser, so this sees exactly what Bolt would see.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_bolt.request.internals import (
    extract_content_type,
    extract_enterprise_id,
    extract_team_id,
    parse_body,
)

# Top-level request types Slack sends that no Bolt listener can match (they carry no
# event, action or callback id); they are acknowledged and otherwise ignored.
ACK_ONLY_TYPES = frozenset({"app_rate_limited"})


def parse(raw: bytes, headers: dict[str, Any]) -> tuple[Any, str | None]:
    """The body as Bolt would parse it, or the reason it cannot be parsed."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, "body is not UTF-8"
    normalized: dict[str, Sequence[str]] = {k.lower(): [str(v)] for k, v in headers.items()}
    try:
        return parse_body(text, extract_content_type(normalized)), None
    except ValueError:  # json.JSONDecodeError is a ValueError
        return None, "body is not JSON"


def problem(body: Any) -> str | None:
    """Why a parsed request body cannot be one Slack sends, or None when it can."""
    if not isinstance(body, dict):
        return "body is not a JSON object"
    kind = body.get("type")
    if "command" in body and kind is None:
        if not _text(body.get("user_id")):
            return "slash command without user_id"
        if not _text(body.get("channel_id")):
            return "slash command without channel_id"
        return None if _has_workspace(body) else "slash command without team_id"
    if kind == "block_actions":
        actions = body.get("actions")
        if not isinstance(actions, list) or not actions:
            return "block_actions without actions"
        if not all(isinstance(a, dict) for a in actions):
            return "block_actions with an action that is not an object"
        user = body.get("user")
        if not isinstance(user, dict) or not _text(user.get("id")):
            return "block_actions without a user"
        return None if _has_workspace(body) else "block_actions without a team"
    if kind == "event_callback" and "event" in body:
        if not isinstance(body["event"], dict):
            return "event is not an object"
        return None if _has_workspace(body) else "event without team_id"
    return None


def ack_only(body: Any) -> bool:
    """A request to acknowledge and ignore: app_rate_limited, an event callback without an
    event."""
    if not isinstance(body, dict):
        return False
    kind = body.get("type")
    return kind in ACK_ONLY_TYPES or (kind == "event_callback" and "event" not in body)


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _has_workspace(body: dict[str, Any]) -> bool:
    """Bolt finds a team (or, for an org-wide install, an org) to authorize it by."""
    try:
        return _text(extract_team_id(body)) or _text(extract_enterprise_id(body))
    except (AttributeError, TypeError, KeyError, IndexError):
        return False
