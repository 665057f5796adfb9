"""Slack's odd requests, as a real workspace sends them to the real Bolt app.

- Every kind of request Slack may send is acknowledged with a 2xx: a 404 or a 5xx makes
  Slack retry the same request, and to a person it looks like the app is broken.
- A correctly signed but malformed request gets a plain 400 and no traceback in the logs.
- A slash command Slack delivers twice is answered once.
- A workspace that uninstalls the app or revokes its token gets nothing more.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.delivery import DeliveryError
from bot.engine.events import Outbound
from tests.fake_slack import BOT_USER, TEAM, TOKEN
from tests.test_slack import (  # noqa: F401  (slack: the fixture)
    ADMIN,
    APP_ID,
    CHANNEL,
    RUNNER,
    Slack,
    onboard,
    post_due_warmups,
    slack,
    stored_user,
)

FORM = "application/x-www-form-urlencoded"
USER = {"id": RUNNER, "team_id": TEAM}
TEAM_OBJ = {"id": TEAM, "domain": "runners"}


def _event(inner: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "token": "legacy",
        "team_id": TEAM,
        "api_app_id": APP_ID,
        "type": "event_callback",
        "event_id": f"Ev{abs(hash(json.dumps(inner))) % 10**8:08d}",
        "event_time": 1,
        "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
        **extra,
    }
    if inner is not None:
        body["event"] = inner
    return body


# Requests Slack may send that the coach has no use for; each must still get a 2xx.
INTERACTIONS: dict[str, dict[str, Any]] = {
    "a button with an action_id we never sent": {
        "type": "block_actions",
        "user": USER,
        "team": TEAM_OBJ,
        "api_app_id": APP_ID,
        "trigger_id": "t.unknown",
        "container": {"type": "message", "channel_id": f"D{RUNNER}", "message_ts": "1.1"},
        "channel": {"id": f"D{RUNNER}"},
        "actions": [{"action_id": "someone_elses_button", "value": "x", "action_ts": "1.2"}],
    },
    "a closed modal (view_closed)": {
        "type": "view_closed",
        "user": USER,
        "team": TEAM_OBJ,
        "api_app_id": APP_ID,
        "view": {"id": "V1", "type": "modal", "callback_id": "old_modal"},
        "is_cleared": False,
    },
    "a submitted modal (view_submission)": {
        "type": "view_submission",
        "user": USER,
        "team": TEAM_OBJ,
        "api_app_id": APP_ID,
        "trigger_id": "t.view",
        "view": {"id": "V2", "type": "modal", "callback_id": "old_modal", "state": {}},
    },
    "a global shortcut": {
        "type": "shortcut",
        "callback_id": "hip_shortcut",
        "trigger_id": "t.shortcut",
        "user": USER,
        "team": TEAM_OBJ,
        "api_app_id": APP_ID,
    },
    "a message shortcut": {
        "type": "message_action",
        "callback_id": "hip_message_shortcut",
        "trigger_id": "t.message_action",
        "user": USER,
        "team": TEAM_OBJ,
        "api_app_id": APP_ID,
        "channel": {"id": CHANNEL},
        "message": {"ts": "1.1", "type": "message"},
    },
    "an options request (block_suggestion)": {
        "type": "block_suggestion",
        "action_id": "a_select",
        "block_id": "b",
        "value": "ru",
        "user": USER,
        "team": TEAM_OBJ,
        "api_app_id": APP_ID,
    },
}
EVENTS: dict[str, dict[str, Any]] = {
    "app_uninstalled": _event({"type": "app_uninstalled"}),
    "tokens_revoked": _event({"type": "tokens_revoked", "tokens": {"oauth": ["U9"], "bot": []}}),
    "app_rate_limited": {
        "token": "legacy",
        "type": "app_rate_limited",
        "team_id": TEAM,
        "minute_rate_limited": 1518467820,
        "api_app_id": APP_ID,
    },
    "an event callback without an event": _event(None),
    "an event type we never subscribed to": _event(
        {"type": "reaction_added", "user": RUNNER, "reaction": "tada", "item": {}}
    ),
    "a channel message": _event(
        {"type": "message", "channel_type": "channel", "channel": CHANNEL, "user": RUNNER}
    ),
}


def _no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, [f"{r.name}: {r.getMessage()}" for r in bad]


@pytest.mark.parametrize("kind", list(INTERACTIONS))
async def test_every_interaction_slack_may_send_is_acknowledged(
    slack: Slack,  # noqa: F811
    kind: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    response = await slack.settle(await slack.interaction(INTERACTIONS[kind]))
    assert 200 <= response.status_code < 300
    if INTERACTIONS[kind]["type"] == "block_suggestion":
        assert response.json() == {"options": []}  # an empty list, not an error
    _no_tracebacks(caplog)


@pytest.mark.parametrize("kind", list(EVENTS))
async def test_every_event_slack_may_send_is_acknowledged(
    slack: Slack,  # noqa: F811
    kind: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    response = await slack.post(json.dumps(EVENTS[kind]).encode(), "application/json")
    await slack.settle(response)
    assert response.status_code == 200
    _no_tracebacks(caplog)


def _form(fields: dict[str, str]) -> bytes:
    return urlencode(fields).encode()


MALFORMED: dict[str, tuple[bytes, str]] = {
    "a slash command without user_id": (
        _form({"command": "/hip", "text": "help", "team_id": TEAM, "channel_id": CHANNEL}),
        FORM,
    ),
    "a button press with no actions": (
        _form(
            {
                "payload": json.dumps(
                    {"type": "block_actions", "user": USER, "team": TEAM_OBJ, "actions": []}
                )
            }
        ),
        FORM,
    ),
    "a button press without a user": (
        _form(
            {
                "payload": json.dumps(
                    {
                        "type": "block_actions",
                        "team": TEAM_OBJ,
                        "actions": [{"action_id": "hip_1", "value": "1:x", "action_ts": "1"}],
                    }
                )
            }
        ),
        FORM,
    ),
    "a payload that is a JSON list": (_form({"payload": "[1, 2]"}), FORM),
    "a payload that is not JSON": (_form({"payload": "{not json"}), FORM),
    "a JSON body that is a list": (b'[{"type": "event_callback"}]', "application/json"),
    "a JSON body that is not JSON": (b'{"type": "event_callback", ', "application/json"),
    "an event that is not an object": (
        json.dumps(_event(None, event="message")).encode(),
        "application/json",
    ),
}


@pytest.mark.parametrize("kind", list(MALFORMED))
async def test_a_signed_but_malformed_request_gets_400_without_a_traceback(
    slack: Slack,  # noqa: F811
    kind: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    body, content_type = MALFORMED[kind]
    response = await slack.post(body, content_type)
    assert response.status_code == 400, (response.status_code, response.text)
    assert await slack.adapter.drain(5)
    assert not [c for c in slack.fake.calls if c.method != "auth.test"]
    _no_tracebacks(caplog)
    # The same bytes without a valid signature are refused as unsigned, not parsed.
    unsigned = await slack.post(body, content_type, secret="not-the-secret")
    assert unsigned.status_code == 401


async def test_a_body_that_is_not_utf8_is_refused_without_a_traceback(
    slack: Slack,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Slack signs UTF-8 text; no signature over these bytes can be checked, so it is
    # refused like an unsigned request.
    response = await slack.http.post(
        "/slack/events",
        content=b'{"type": "\xff\xfe"}',
        headers={
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": "1700000000",
            "X-Slack-Signature": "v0=" + "0" * 64,
        },
    )
    assert response.status_code == 401
    _no_tracebacks(caplog)


# --- a slash command delivered twice ----------------------------------------------------


@pytest.mark.parametrize("text", ["how are you", "warmup list", "help"])
async def test_a_slash_command_delivered_twice_in_a_channel_is_answered_once(
    slack: Slack,  # noqa: F811
    text: str,
) -> None:
    for _ in range(2):
        await slack.slash(text, user=RUNNER, channel=CHANNEL, trigger="trigger.twice")
    answers = [
        c
        for c in slack.fake.calls
        if c.method in ("chat.postMessage", "chat.postEphemeral", "respond")
    ]
    assert len(answers) == 1, [a.text for a in answers]


# --- a workspace that is gone -------------------------------------------------------------


async def _reminders_after(slack: Slack, days: int = 1) -> list[Any]:  # noqa: F811
    """Let the scheduler run over the next `days` days; return what it posted."""
    mark = len(slack.fake.calls)
    await post_due_warmups(slack, hours=24 * days)
    return [c for c in slack.since(mark) if c.method == "chat.postMessage"]


async def _a_runner_and_a_club(slack: Slack) -> None:  # noqa: F811
    await onboard(slack)
    await slack.slash("warmup add mon,tue,wed,thu,fri,sat,sun 18:00", user=ADMIN, channel=CHANNEL)


async def test_before_any_uninstall_the_runner_and_the_club_get_their_reminders(
    slack: Slack,  # noqa: F811
) -> None:
    await _a_runner_and_a_club(slack)
    posted = await _reminders_after(slack)
    assert {c["channel"] for c in posted} == {f"D{RUNNER}", CHANNEL}


@pytest.mark.parametrize(
    "event",
    [
        {"type": "app_uninstalled"},
        {"type": "tokens_revoked", "tokens": {"oauth": [], "bot": [BOT_USER]}},
    ],
    ids=["app_uninstalled", "tokens_revoked"],
)
async def test_an_uninstalled_or_revoked_workspace_gets_no_more_reminders(
    slack: Slack,  # noqa: F811
    event: dict[str, Any],
) -> None:
    await _a_runner_and_a_club(slack)
    await slack.event(event)
    assert await _reminders_after(slack, days=2) == []
    user = await stored_user(slack)
    assert user is not None and user.unreachable


async def test_revoking_only_a_user_token_keeps_the_reminders(slack: Slack) -> None:  # noqa: F811
    await _a_runner_and_a_club(slack)
    await slack.event({"type": "tokens_revoked", "tokens": {"oauth": ["U9SOMEONE"], "bot": []}})
    assert await _reminders_after(slack)


async def test_a_rejected_token_stops_sending_and_turns_health_red(slack: Slack) -> None:  # noqa: F811
    fake, adapter = slack.fake, slack.adapter
    assert adapter.health() is None
    fake.dead_tokens[TOKEN] = "invalid_auth"
    card = Outbound(chat_id=f"{TEAM}:{CHANNEL}", text="warm-up card")
    with pytest.raises(DeliveryError):
        await adapter.send(card)
    mark = len(fake.calls)
    with pytest.raises(DeliveryError):
        await adapter.send(card)
    assert slack.since(mark) == []  # nothing more is sent with a token Slack refused
    assert "invalid_auth" in (adapter.health() or "")
