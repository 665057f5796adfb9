"""Slack distribution end to end: clubs in two workspaces click "Add to Slack", use the
coach side by side, and one of them removes it again.

The real Bolt OAuth flow (install page, state cookie, redirect, oauth.v2.access) runs
behind the real ASGI app against the fake Slack API, with slack_sdk's SQLAlchemy stores in
the test database (SQLite, and PostgreSQL with TEST_DATABASE_URL).
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from bot.adapters.slack import SlackAdapter
from bot.adapters.slack.oauth import BOT_SCOPES, installation_store, state_store
from bot.config import Settings
from bot.delivery import PermanentFailure
from bot.engine.events import ChatKind, InboundKind, Outbound
from bot.service import Coach
from bot.storage.db import Database, create_engine
from bot.storage.models import UNMAPPED_TABLES
from bot.web import build_app
from tests.chat_driver import FIRST_DAY_CHECKIN_TAPS, Chat, Clock
from tests.chat_driver import onboard as onboard_chat
from tests.fake_slack import CLIENT_ID, CLIENT_SECRET, TEAM, TOKEN, FakeSlack
from tests.test_slack import SECRET, Slack, onboard, post_due_warmups

ROWING, RUNNING = "T1ROWING", "T2RUNNING"  # two clubs, two workspaces
SAME_USER = "U1SAMEID"  # Slack reuses user ids across workspaces
CAPTAIN = "U2CAPTAIN"
CHANNEL = "C0SAMEID"
STATE_COOKIE = "slack-app-oauth-state"

# slack_sdk's own oauth.v2.access call still uses aiohttp's BasicAuth.
pytestmark = pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning")


@pytest.fixture
async def slack(db_url: str) -> AsyncIterator[Slack]:
    fake = FakeSlack(
        users={
            SAME_USER: {"tz": "Europe/Berlin", "is_admin": False},
            CAPTAIN: {"tz": "Europe/Berlin", "is_admin": True},
        }
    )
    await fake.start()
    db = Database(db_url)
    clock = Clock()
    settings = Settings(
        database_url=db_url,
        slack_signing_secret=SECRET,
        slack_api_url=fake.api_url,
        slack_client_id=CLIENT_ID,
        slack_client_secret=CLIENT_SECRET,
    )
    adapter = SlackAdapter(settings, Coach(db, clock=clock))
    transport = httpx.ASGITransport(app=build_app(db, [adapter]))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="https://coach.test") as http:
            yield Slack(http, fake, adapter, db, clock, team=ROWING)
    finally:
        await adapter.stop()
        await db.dispose()
        await fake.stop()


def authorize_link(page: httpx.Response) -> dict[str, list[str]]:
    """The query of the "Add to Slack" link on the install page."""
    assert page.status_code == 200 and "Add to Slack" in page.text
    link = re.search(r'href="(https://slack\.com/oauth/v2/authorize\?[^"]+)"', page.text)
    assert link is not None, page.text
    return parse_qs(urlsplit(html.unescape(link.group(1))).query)


async def install(
    slack: Slack, team: str, enterprise: str | None = None, *, org_wide: bool = False
) -> httpx.Response:
    """An admin of `team` opens /slack/install, clicks "Add to Slack", allows the scopes
    on slack.com (for the whole Enterprise Grid org, with `org_wide`), and is sent back to
    /slack/oauth_redirect."""
    page = await slack.http.get("/slack/install")
    query = authorize_link(page)
    assert query["client_id"] == [CLIENT_ID]
    state = query["state"][0]
    assert f"{STATE_COOKIE}={state}" in page.headers["set-cookie"]
    code = slack.fake.grant(
        team, set(query["scope"][0].split(",")), enterprise, org_wide=org_wide
    )
    return await slack.http.get(
        "/slack/oauth_redirect",
        params={"code": code, "state": state},
        headers={"Cookie": f"{STATE_COOKIE}={state}"},
    )


async def installed(slack: Slack, team: str) -> Any:
    assert slack.adapter.installations is not None
    return await slack.adapter.installations.async_find_installation(
        enterprise_id=None, team_id=team
    )


async def stored(slack: Slack, team: str, user: str = SAME_USER) -> Any:
    async with slack.db.transaction(readonly=True) as repo:
        return await repo.get_user("slack", f"{team}:{user}", lock=False)


def calls_by_team(slack: Slack, mark: int) -> set[str | None]:
    return {c.team for c in slack.since(mark) if c.method not in ("respond", "upload")}


async def two_clubs(slack: Slack) -> tuple[Slack, Slack]:
    """Both workspaces installed; the same Slack user id set up in each; a daily warm-up
    in each club's channel (the channel ids are the same too)."""
    for team in (ROWING, RUNNING):
        assert (await install(slack, team)).status_code == 200
    rowing, running = slack, replace(slack, team=RUNNING)
    for club in (rowing, running):
        await onboard(club, user=SAME_USER)
        await club.slash(
            "warmup add mon,tue,wed,thu,fri,sat,sun 18:00", user=CAPTAIN, channel=CHANNEL
        )
    return rowing, running


# --- installing -----------------------------------------------------------------------------


async def test_add_to_slack_installs_a_workspace_with_the_scopes_the_app_needs(
    slack: Slack,
) -> None:
    assert await installed(slack, ROWING) is None
    done = await install(slack, ROWING)
    assert done.status_code == 200
    installation = await installed(slack, ROWING)
    assert installation is not None and installation.bot_token in slack.fake.grants
    assert set(installation.bot_scopes) == set(BOT_SCOPES)
    exchange = slack.fake.last("oauth.v2.access")
    assert exchange["_client"] == CLIENT_ID


async def test_a_redirect_without_the_installers_state_installs_nothing(slack: Slack) -> None:
    page = await slack.http.get("/slack/install")
    state = authorize_link(page)["state"][0]
    code = slack.fake.grant(ROWING, set(BOT_SCOPES))
    slack.http.cookies.clear()  # another browser than the one that opened the install page
    forged = await slack.http.get("/slack/oauth_redirect", params={"code": code, "state": state})
    assert forged.status_code >= 400  # no cookie: not the browser that started the install
    replayed = await slack.http.get(
        "/slack/oauth_redirect",
        params={"code": code, "state": "made-up"},
        headers={"Cookie": f"{STATE_COOKIE}=made-up"},
    )
    assert replayed.status_code >= 400
    assert await installed(slack, ROWING) is None
    assert not slack.fake.of("oauth.v2.access")


# --- two workspaces side by side --------------------------------------------------------------


async def test_two_workspaces_use_their_own_tokens_and_their_runners_stay_apart(
    slack: Slack,
) -> None:
    for team in (ROWING, RUNNING):
        await install(slack, team)
    rowing, running = slack, replace(slack, team=RUNNING)

    mark = len(slack.fake.calls)
    await onboard(rowing, user=SAME_USER)
    assert calls_by_team(slack, mark) == {ROWING}  # every call with the rowing club's token
    mark = len(slack.fake.calls)
    await onboard(running, user=SAME_USER)
    assert calls_by_team(slack, mark) == {RUNNING}

    a, b = await stored(slack, ROWING), await stored(slack, RUNNING)
    assert a is not None and b is not None and a.id != b.id
    assert (a.chat_id, b.chat_id) == (f"{ROWING}:D{SAME_USER}", f"{RUNNING}:D{SAME_USER}")

    # A check-in in one workspace is that workspace's runner's only.
    await rowing.dm("checkin", user=SAME_USER)
    await rowing.press_all(*FIRST_DAY_CHECKIN_TAPS, user=SAME_USER)
    async with slack.db.transaction(readonly=True) as repo:
        assert len(await repo.latest_checkins(a.id, 5)) == 1
        assert await repo.latest_checkins(b.id, 5) == []

    # Deleting in one workspace leaves the other runner's plan alone.
    await running.dm("delete", user=SAME_USER)
    await running.press("Yes, delete everything", user=SAME_USER)
    assert await stored(slack, RUNNING) is None
    assert await stored(slack, ROWING) is not None


async def test_enterprise_grid_installs_are_keyed_by_org_or_by_workspace(slack: Slack) -> None:
    # An org-wide install: one token and one runner across the org's workspaces.
    assert (await install(slack, "T3NORTH", "E1ORG", org_wide=True)).status_code == 200
    assert slack.adapter.installations is not None
    org = await slack.adapter.installations.async_find_installation(
        enterprise_id="E1ORG", team_id=None, is_enterprise_install=True
    )
    assert org is not None and org.team_id is None and org.is_enterprise_install
    north = replace(slack, team="T3NORTH", enterprise="E1ORG", org_wide=True)
    south = replace(north, team="T4SOUTH")
    await onboard(north, user=SAME_USER)
    mark = len(slack.fake.calls)
    await south.dm("today", user=SAME_USER)
    assert "Today — phase 1" in south.dm_text(mark, user=SAME_USER)
    async with slack.db.transaction(readonly=True) as repo:
        people = [u.platform_user_id for u in await repo.list_users()]
    assert people == [f"E1ORG.:{SAME_USER}"]

    # A workspace of another org, installed on its own.
    await install(slack, "T5EAST", "E2ORG")
    east = replace(slack, team="T5EAST", enterprise="E2ORG")
    await onboard(east, user=SAME_USER)
    assert await stored(slack, "E2ORG.T5EAST") is not None
    await post_due_warmups(east)
    assert {c.team for c in slack.fake.of("chat.postMessage")} == {"T3NORTH", "T5EAST"}


async def test_one_workspace_uninstalling_stops_only_its_own_reminders(slack: Slack) -> None:
    rowing, running = await two_clubs(slack)
    mark = len(slack.fake.calls)
    await post_due_warmups(running)
    before = [c for c in slack.since(mark) if c.method == "chat.postMessage"]
    assert {(c.team, c["channel"]) for c in before} == {
        (ROWING, f"D{SAME_USER}"),
        (ROWING, CHANNEL),
        (RUNNING, f"D{SAME_USER}"),
        (RUNNING, CHANNEL),
    }

    # The rowing club removes the app: Slack revokes its token and says so.
    slack.fake.uninstall(ROWING)
    await rowing.event({"type": "app_uninstalled"})
    assert await installed(slack, ROWING) is None
    assert await installed(slack, RUNNING) is not None

    mark = len(slack.fake.calls)
    await post_due_warmups(running)
    after = slack.since(mark)
    assert {(c.team, c["channel"]) for c in after if c.method == "chat.postMessage"} == {
        (RUNNING, f"D{SAME_USER}"),
        (RUNNING, CHANNEL),
    }
    assert not [c for c in after if c.get("_refused")]  # nothing even tried for rowing

    # Installing again brings the rowing club's reminders back.
    await install(slack, ROWING)
    mark = len(slack.fake.calls)
    await post_due_warmups(running)
    assert {c.team for c in slack.since(mark) if c.method == "chat.postMessage"} == {
        ROWING,
        RUNNING,
    }


async def test_a_workspace_token_slack_refuses_stops_that_workspace_only(slack: Slack) -> None:
    await two_clubs(slack)
    running_token = (await installed(slack, RUNNING)).bot_token
    slack.fake.dead_tokens[running_token] = "invalid_auth"
    with pytest.raises(PermanentFailure):
        await slack.adapter.send(Outbound(chat_id=f"{RUNNING}:{CHANNEL}", text="card"))
    assert await installed(slack, RUNNING) is None
    assert (await stored(slack, RUNNING)).unreachable
    assert not (await stored(slack, ROWING)).unreachable
    await slack.adapter.send(Outbound(chat_id=f"{ROWING}:{CHANNEL}", text="card"))
    assert slack.fake.last("chat.postMessage").team == ROWING


async def test_a_workspace_that_never_installed_the_app_gets_an_answer_not_an_error(
    slack: Slack,
) -> None:
    stranger = replace(slack, team="T3STRANGER")
    response = await stranger.post(
        b"token=x&team_id=T3STRANGER&user_id=U1&channel_id=C1&command=%2Fhip&text=help"
        + b"&response_url="
        + slack.fake.respond_url("stranger").encode(),
        "application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert await slack.adapter.drain(5)
    assert "reinstall" in slack.fake.last("respond")["text"].lower()


# --- the stores' tables and the rows stored before workspaces --------------------------------


def _store_diff(connection: Connection) -> list[Any]:
    expected = MetaData()
    for store in (installation_store(CLIENT_ID, None), state_store(None)):  # type: ignore[arg-type]
        for table in store.metadata.sorted_tables:
            table.to_metadata(expected)
    assert set(expected.tables) == UNMAPPED_TABLES
    context = MigrationContext.configure(
        connection,
        opts={
            "compare_type": True,
            "include_name": lambda name, type_, _parent: (
                type_ != "table" or name in UNMAPPED_TABLES
            ),
        },
    )
    return list(compare_metadata(context, expected))


async def test_the_migration_creates_exactly_the_tables_slack_sdks_stores_define(
    db_url: str,
) -> None:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_store_diff) == []
    finally:
        await engine.dispose()


async def test_rows_stored_before_workspaces_move_to_the_tokens_workspace_on_first_start(
    database: Database,
) -> None:
    """An existing single-workspace deployment upgrades: its runner, club and queued
    reminder were stored with bare Slack ids."""
    coach = Coach(database, clock=Clock())
    runner = Chat(coach, platform="slack", user_id="U1OLD", chat_id="DU1OLD")
    await onboard_chat(runner)
    club = Chat(
        coach,
        platform="slack",
        user_id="U2OLD",
        chat_id="C1OLD",
        chat_kind=ChatKind.GROUP,
        is_admin=True,
        user_tz="Europe/Berlin",
    )
    await club.deliver(club.inbound(InboundKind.JOINED))
    await club.send("warmup add sat 08:00")
    fake = FakeSlack()
    await fake.start()
    try:
        settings = Settings(
            database_url=database.url, slack_bot_token=TOKEN, slack_api_url=fake.api_url
        )
        for _ in range(2):  # a second start finds nothing left to move
            await SlackAdapter(settings, coach).start_sender()
    finally:
        await fake.stop()
    async with database.transaction(readonly=True) as repo:
        assert await repo.get_user("slack", "U1OLD", lock=False) is None
        moved = await repo.get_user("slack", f"{TEAM}:U1OLD", lock=False)
        assert moved is not None and moved.chat_id == f"{TEAM}:DU1OLD"
        assert moved.profile.get("onboarded") is True  # the same plan, nothing lost
        chat = await repo.get_team_chat("slack", f"{TEAM}:C1OLD", lock=False)
        assert chat is not None
        assert [w.created_by for w in await repo.list_warmups(chat.id)] == [f"{TEAM}:U2OLD"]


def test_the_client_id_and_secret_turn_on_add_to_slack() -> None:
    env = {
        "SLACK_CLIENT_ID": CLIENT_ID,
        "SLACK_CLIENT_SECRET": CLIENT_SECRET,
        "SLACK_SIGNING_SECRET": SECRET,
    }
    settings = Settings.from_env(env)
    assert settings.slack_enabled and settings.slack_oauth
    assert (settings.slack_client_id, settings.slack_client_secret) == (CLIENT_ID, CLIENT_SECRET)
    assert not Settings.from_env({"SLACK_CLIENT_ID": CLIENT_ID}).slack_enabled


async def test_a_reply_slack_refuses_for_a_dead_token_stops_that_workspace(
    slack: Slack,
) -> None:
    rowing, running = await two_clubs(slack)
    # Slack revoked the rowing club's token, and its tokens_revoked event got lost.
    for token in slack.fake.tokens_of(ROWING):
        slack.fake.dead_tokens[token] = "token_revoked"
    await rowing.dm("today", user=SAME_USER)
    assert await installed(slack, ROWING) is None
    assert (await stored(slack, ROWING)).unreachable
    mark = len(slack.fake.calls)
    await post_due_warmups(running)
    assert {c.team for c in slack.since(mark) if c.method == "chat.postMessage"} == {RUNNING}
