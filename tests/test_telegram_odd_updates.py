"""Telegram updates a real deployment meets sooner or later: one the library cannot parse,
kinds nobody asked for, NUL characters and over-long names, a database that refuses a row,
forwarded commands and captions, the bot removed from a club's group, and a group that
became a supergroup. The real python-telegram-bot code against the fake Bot API.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from bot.service import Coach
from bot.storage import outbox
from bot.storage.db import Database
from bot.storage.models import TeamChat, User, WarmupSchedule
from bot.web import build_app
from tests.chat_driver import Clock
from tests.fake_telegram import FakeTelegram
from tests.test_scheduler_helpers import TEST_CONFIG
from tests.test_telegram import (
    GROUP,
    Person,
    TrackingAdapter,
    labels,
    polling_bot,
    private_chat,
    texts,
    tg_settings,
)

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")

HELP = "hipcoach — a coach for runners"
DELETE_YES = "Yes, delete everything"


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram()
    await server.start()
    yield server
    await server.stop()


def user_of(user_id: int, name: str = "Sam") -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": name}


# --- one update the library cannot parse --------------------------------------------------


async def test_an_update_the_library_cannot_parse_is_skipped_and_the_rest_of_its_batch_answered(
    fake: FakeTelegram, db: Database, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with polling_bot(fake, db, clock) as bot:
        # Three runners write at once: the middle update is a poll in the form an older
        # Bot API server sends, which python-telegram-bot 22 refuses to parse.
        first = fake.push(fake.message_update(private_chat(5201), user_of(5201), "/help"))
        bad = fake.push(fake.old_poll_update(private_chat(5202), user_of(5202)))
        last = fake.push(fake.message_update(private_chat(5203), user_of(5203), "/help"))
        await bot.wait_for(last)
        assert first in bot.finished
        assert HELP in texts(fake.calls_to("sendMessage", 5201))
        assert HELP in texts(fake.calls_to("sendMessage", 5203))
        await fake.wait_confirmed(bad)  # confirmed: Telegram will not hand it out again
        assert bot.health() is None  # still polling
        # Still answering afterwards.
        again = fake.push(fake.message_update(private_chat(5202), user_of(5202), "/help"))
        await bot.wait_for(again)
        assert HELP in texts(fake.calls_to("sendMessage", 5202))
    skipped = [r for r in caplog.records if f"update={bad}" in r.getMessage()]
    assert [r.getMessage() for r in skipped] == [
        f"telegram update={bad} could not be read (TypeError); skipped"
    ]


async def test_every_kind_of_update_gets_an_answer_or_a_deliberate_silence(
    fake: FakeTelegram, db: Database, clock: Clock
) -> None:
    fake.honours_allowed_updates = False  # an older server that sends every kind
    me = private_chat(5210)
    kinds = fake.every_kind_of_update(me, user_of(5210))
    async with polling_bot(fake, db, clock) as bot:
        ids = {kind: fake.push(update) for kind, update in kinds.items()}
        ids["old_poll"] = fake.push(fake.old_poll_update(me, user_of(5210)))
        last = fake.push(fake.message_update(me, user_of(5210), "/help"))
        await bot.wait_for(last)
        assert bot.health() is None
        await fake.wait_confirmed(max(ids.values()))
        assert HELP in texts(fake.calls_to("sendMessage", 5210))
        # Nothing was posted into the club or the channel the odd updates came from.
        posted = {c.chat_id for c in fake.calls if c.method.startswith("send")}
        assert posted <= {"5210"}
    # Private messages the coach cannot read (a photo, a voice note, a sticker, a poll)
    # each get a short re-prompt; everything else is silence.
    private_kinds = ("photo", "voice", "sticker", "location", "poll_message")
    assert len(fake.calls_to("sendMessage", 5210)) == len(private_kinds) + 1


async def test_the_webhook_confirms_an_update_it_cannot_parse(
    fake: FakeTelegram, db: Database, clock: Clock
) -> None:
    settings = tg_settings(
        fake, db, telegram_webhook_url="https://coach.example/telegram", telegram_webhook_secret="s"
    )
    adapter = TrackingAdapter(settings, Coach(db, clock=clock))
    app = build_app(db, [adapter])
    bad = {"update_id": 9101, **fake.old_poll_update(private_chat(5220), user_of(5220))}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answer = await client.post(
                "/telegram", json=bad, headers={"X-Telegram-Bot-Api-Secret-Token": "s"}
            )
    assert answer.status_code == 200  # a 4xx/5xx would make Telegram send it again


async def test_a_rejected_token_stops_polling_and_health_says_so(
    fake: FakeTelegram, db: Database, clock: Clock
) -> None:
    async with polling_bot(fake, db, clock) as bot:
        fake.push(fake.message_update(private_chat(5230), user_of(5230), "/help"))
        await bot.wait_for(fake.updates[-1]["update_id"])
        assert bot.health() is None
        fake.revoked = True  # the token was revoked in BotFather: every call gets 401
        for _ in range(400):  # a bound, not a timing: the loop notices within one poll
            if bot.health() is not None:
                break
            await asyncio.sleep(0.05)
        assert bot.health() == "telegram polling stopped: the bot token was rejected"


# --- data the database cannot store ---------------------------------------------------------


async def test_a_nul_and_an_overlong_name_or_title_are_stored_cleaned(
    fake: FakeTelegram, database: Database, clock: Clock
) -> None:
    name = "Sa\x00m " + "x" * 300
    club = {"id": -1009911, "type": "supergroup", "title": "River\x00side " + "R" * 300}
    async with polling_bot(fake, database, clock) as bot:
        me = Person(fake, bot, 5240, private_chat(5240), name=name)
        calls = await me.send("/start")
        assert "I agree" in labels(calls)
        captain = Person(fake, bot, 5241, club, name="Cap\x00")
        fake.members[(club["id"], 5241)] = "creator"
        calls = await captain.deliver(
            fake.my_chat_member_update(club, captain.user, "left", "member")
        )
        assert "Hi club!" in texts(calls)
    async with database.transaction(readonly=True) as repo:
        user = await repo.get_user("telegram", "5240", lock=False)
        chat = await repo.get_team_chat("telegram", str(club["id"]), lock=False)
    assert user is not None and chat is not None
    assert user.display_name is not None and "\x00" not in user.display_name
    assert len(user.display_name) == 200 and user.display_name.startswith("Sam x")
    assert chat.title is not None and "\x00" not in chat.title and len(chat.title) == 200


async def _refuse_display_name(db: Database, name: str) -> None:
    """Make the database refuse one user row, as a constraint or a bad value would."""
    async with db.engine.begin() as conn:
        if db.is_sqlite:
            await conn.execute(
                text(
                    "CREATE TRIGGER refuse_name BEFORE INSERT ON users "
                    f"WHEN NEW.display_name = '{name}' "
                    "BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
        else:
            await conn.execute(
                text(
                    "ALTER TABLE users ADD CONSTRAINT ck_users_refuse_name "
                    f"CHECK (display_name IS DISTINCT FROM '{name}')"
                )
            )


async def test_a_row_the_database_refuses_fails_that_update_once_and_blocks_nobody(
    fake: FakeTelegram, database: Database, clock: Clock
) -> None:
    await _refuse_display_name(database, "Refused")
    async with polling_bot(fake, database, clock) as bot:
        refused = Person(fake, bot, 5250, private_chat(5250), name="Refused")
        other = Person(fake, bot, 5251, private_chat(5251))
        bad = fake.push(fake.message_update(refused.chat, refused.user, "/start"))
        good = fake.push(fake.message_update(other.chat, other.user, "/start"))
        await bot.wait_for(good)
        await bot.wait_for(bad)  # handled beside the good one (other chat), not before it
        assert "I agree" in labels(fake.calls_to("sendMessage", 5251))
        # The runner whose update failed hears that it did, once.
        sorry = texts(fake.calls_to("sendMessage", 5250))
        assert "couldn't save that" in sorry
        await fake.wait_confirmed(bad)
    async with database.transaction(readonly=True) as repo:
        assert await repo.get_user("telegram", "5250", lock=False) is None


async def test_the_webhook_answers_200_to_an_update_the_database_refuses(
    fake: FakeTelegram, database: Database, clock: Clock
) -> None:
    await _refuse_display_name(database, "Refused")
    settings = tg_settings(
        fake,
        database,
        telegram_webhook_url="https://coach.example/telegram",
        telegram_webhook_secret="s",
    )
    adapter = TrackingAdapter(settings, Coach(database, clock=clock))
    app = build_app(database, [adapter])
    update = {
        "update_id": 9201,
        **fake.message_update(private_chat(5252), user_of(5252, "Refused"), "/start"),
    }
    headers = {"X-Telegram-Bot-Api-Secret-Token": "s"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            first = await client.post("/telegram", json=update, headers=headers)
            again = await client.post("/telegram", json=update, headers=headers)
    assert (first.status_code, again.status_code) == (200, 200)
    assert len(fake.calls_to("sendMessage", 5252)) == 1  # one apology, not one per delivery


# --- forwards and captions ----------------------------------------------------------------


async def test_a_forwarded_command_or_a_caption_is_text_not_a_command(
    fake: FakeTelegram, runner: Person
) -> None:
    me = runner
    for update in (
        fake.forwarded_update(me.chat, me.user, "/delete"),
        fake.forwarded_update(me.chat, me.user, "/delete", legacy=True),
        fake.forwarded_update(me.chat, me.user, "delete"),
        fake.photo_update(me.chat, me.user, "/delete"),
        fake.photo_update(me.chat, me.user, "delete"),
    ):
        calls = await me.deliver(update)
        assert calls, update  # answered, with a re-prompt
        assert DELETE_YES not in labels(calls), update
    calls = await me.send("/delete")  # typed by the person: it is their command
    assert DELETE_YES in labels(calls)


@pytest.fixture
async def bot(fake: FakeTelegram, db: Database, clock: Clock) -> AsyncIterator[TrackingAdapter]:
    async with polling_bot(fake, db, clock) as adapter:
        yield adapter


@pytest.fixture
def runner(fake: FakeTelegram, bot: TrackingAdapter) -> Person:
    return Person(fake, bot, 5260, private_chat(5260))


# --- the club's group ---------------------------------------------------------------------


async def club_with_a_warmup(
    fake: FakeTelegram, bot: TrackingAdapter, group: dict[str, Any]
) -> Person:
    captain = Person(fake, bot, 7301, group, name="Cap")
    fake.members[(int(group["id"]), captain.user_id)] = "creator"
    await captain.deliver(fake.my_chat_member_update(group, captain.user, "left", "member"))
    calls = await captain.send("/warmup add tue,thu 18:00 before 15 tz Europe/Berlin")
    assert "Done: the warm-up card will go out" in texts(calls)
    return captain


async def team_chat(db: Database, chat_id: int) -> TeamChat | None:
    async with db.transaction(readonly=True) as repo:
        return await repo.get_team_chat("telegram", str(chat_id), lock=False)


async def test_removed_from_a_group_stops_its_cards_at_once_until_re_added(
    fake: FakeTelegram, bot: TrackingAdapter, db: Database, clock: Clock
) -> None:
    captain = await club_with_a_warmup(fake, bot, GROUP)
    for gone in ("kicked", "left"):
        await captain.deliver(fake.my_chat_member_update(GROUP, captain.user, "member", gone))
        chat = await team_chat(db, GROUP["id"])
        assert chat is not None and chat.unreachable, gone
        async with db.transaction() as repo:
            assert await outbox.claim_due_warmups(repo, clock.now + timedelta(days=8), 10) == []
        calls = await captain.deliver(
            fake.my_chat_member_update(GROUP, captain.user, gone, "member")
        )
        assert "Hi club!" in texts(calls)
        chat = await team_chat(db, GROUP["id"])
        assert chat is not None and not chat.unreachable
        async with db.transaction() as repo:
            assert await outbox.claim_due_warmups(repo, clock.now + timedelta(days=8), 10)


async def test_a_group_that_became_a_supergroup_keeps_its_warmups(
    fake: FakeTelegram, bot: TrackingAdapter, db: Database, clock: Clock
) -> None:
    old = {"id": -4001, "type": "group", "title": "Dawn Patrol"}
    new_id = -1004001
    captain = await club_with_a_warmup(fake, bot, old)
    for update in fake.migration_updates(old, new_id, captain.user):
        await captain.deliver(update)
    assert await team_chat(db, old["id"]) is None
    chat = await team_chat(db, new_id)
    assert chat is not None and chat.title == "Dawn Patrol" and chat.timezone == "Europe/Berlin"
    async with db.transaction(readonly=True) as repo:
        schedules = list(await repo.session.scalars(select(WarmupSchedule)))
    assert [s.team_chat_id for s in schedules] == [chat.id]
    # The card goes to the supergroup.
    sched = _dispatcher(db, bot, clock)
    due = schedules[0].next_warmup_at
    assert due is not None
    clock.now = due
    await sched.tick(due)
    await sched.dispatch(due)
    cards = [c for c in fake.calls_to("sendMessage", new_id) if "warm-up" in c.text.lower()]
    assert len(cards) == 1


async def test_a_send_to_a_migrated_group_follows_the_new_id_and_records_it(
    fake: FakeTelegram, bot: TrackingAdapter, db: Database, clock: Clock
) -> None:
    old = {"id": -4002, "type": "group", "title": "Hill Reps"}
    new_id = -1004002
    await club_with_a_warmup(fake, bot, old)
    fake.migrated[old["id"]] = new_id  # the service messages never reached us
    async with db.transaction(readonly=True) as repo:
        schedule = (await repo.session.scalars(select(WarmupSchedule))).one()
    due = schedule.next_warmup_at
    assert due is not None
    clock.now = due
    sched = _dispatcher(db, bot, clock)
    await sched.tick(due)
    assert await sched.dispatch(due) == 1
    cards = [c for c in fake.calls_to("sendMessage", new_id) if "warm-up" in c.text.lower()]
    assert len(cards) == 1
    assert await team_chat(db, old["id"]) is None
    chat = await team_chat(db, new_id)
    assert chat is not None and not chat.unreachable
    async with db.transaction(readonly=True) as repo:
        assert (await repo.session.scalars(select(User))).all() == []


def _dispatcher(db: Database, bot: TrackingAdapter, clock: Clock) -> Any:
    from scheduler import Scheduler

    return Scheduler(db, bot.coach, {"telegram": bot}, clock=clock, config=TEST_CONFIG)


# --- a tap is read without the keyboard it was tapped on ------------------------------------


async def test_a_tap_is_read_without_building_the_keyboard_it_was_tapped_on(
    fake: FakeTelegram, db: Database
) -> None:
    from bot.adapters.telegram.adapter import TelegramAdapter

    buttons = [[{"text": str(n), "callback_data": f"q:{n}"}] for n in range(11)]
    keyboard = {"inline_keyboard": buttons}
    tap = {
        "update_id": 9,
        "callback_query": {
            "id": "q1",
            "from": user_of(7),
            "chat_instance": "c",
            "data": "q:3",
            "message": {
                "message_id": 40,
                "date": 1_760_000_000,
                "chat": private_chat(7),
                "text": "How is your hip this morning?",
                "reply_markup": keyboard,
            },
        },
    }
    adapter = TelegramAdapter(tg_settings(fake, db), Coach(db))
    update = adapter._parse(tap, 9)
    assert update is not None and update.callback_query is not None
    query = update.callback_query
    assert query.data == "q:3" and query.message is not None
    assert query.message.message_id == 40 and query.message.chat.id == 7
    assert query.message.reply_markup is None  # never built: nothing reads it
    assert tap["callback_query"]["message"]["reply_markup"] == keyboard  # the input is kept
    # Shapes that are not a tap on a message reach the library as they came.
    for odd in ({"update_id": 1, "callback_query": None}, {"update_id": 2, "message": None}):
        parsed = adapter._parse(odd, odd["update_id"])
        assert parsed is not None and parsed.callback_query is None
