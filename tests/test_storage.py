"""Storage stories, each run on SQLite and on PostgreSQL (see tests/conftest.py)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm.exc import StaleDataError

from bot.storage.db import (
    Database,
    create_engine,
    default_database_url,
    downgrade_async,
    normalize_database_url,
    upgrade_async,
)
from bot.storage.models import UNMAPPED_TABLES, Base, User, WarmupSchedule
from bot.storage.repository import Repository
from bot.storage.types import UTCDateTime

DAY = date(2024, 5, 6)
NOW = datetime(2024, 5, 6, 7, 30, tzinfo=UTC)


async def _new_user(repo: Repository, platform_user_id: str = "u1") -> User:
    return await repo.create_user("telegram", platform_user_id, f"chat-{platform_user_id}", "Ann")


async def _everything_about(repo: Repository, user: User) -> None:
    """One row in every table that can hold something about `user`."""
    await repo.upsert_checkin(user.id, DAY, pain_now=3, ran="yes", phase=1, level=2)
    await repo.log_exercise(user.id, DAY, "clamshell", "done")
    await repo.add_escalation(
        user.id, level="urgent", trigger="R9,R11", flow="checkin", message="see a clinician"
    )
    await repo.add_screening(user.id, kind="start", answers={"R1": "no"}, level="green")
    await repo.add_plan_change(
        user.id,
        from_phase=1,
        from_level=1,
        to_phase=1,
        to_level=2,
        decision="progress",
        reason="pain_settled",
    )
    chat = await repo.get_or_create_team_chat(user.platform, "group-1", "Club")
    await repo.add_warmup(
        chat.id, "tue,thu", "18:00", 30, "Europe/Berlin", user.platform_user_id, NOW
    )
    user.profile = {"phase": 1, "level": 2}
    user.conversation = {"flow": "checkin", "step": "pain_now"}
    await repo.save_user(user)


async def test_a_runners_checkin_survives_reopening_the_database(db_url: str) -> None:
    db = Database(db_url)
    async with db.transaction() as repo:
        user = await _new_user(repo)
        await repo.upsert_checkin(user.id, DAY, pain_now=4, ran="yes", phase=2, level=1)
    await db.dispose()

    reopened = Database(db_url)
    try:
        async with reopened.transaction() as repo:
            again = await repo.get_user("telegram", "u1")
            assert again is not None
            [checkin] = await repo.checkins_between(again.id, DAY, DAY)
            assert (checkin.pain_now, checkin.ran, checkin.phase, checkin.level) == (
                4,
                "yes",
                2,
                1,
            )
    finally:
        await reopened.dispose()


async def test_the_same_event_id_is_claimed_once(database: Database) -> None:
    async with database.transaction() as repo:
        assert await repo.claim_event("telegram", "1001") is True
        assert await repo.claim_event("telegram", "1001") is False
        # Ids are only unique within a platform.
        assert await repo.claim_event("slack", "1001") is True
    async with database.transaction() as repo:
        assert await repo.claim_event("telegram", "1001") is False


async def test_a_failed_turn_leaves_its_event_unclaimed(database: Database) -> None:
    with pytest.raises(RuntimeError):
        async with database.transaction() as repo:
            assert await repo.claim_event("slack", "Ev1")
            raise RuntimeError("the turn failed")
    async with database.transaction() as repo:
        assert await repo.claim_event("slack", "Ev1") is True


async def test_concurrent_claims_of_one_event_have_exactly_one_winner(
    database: Database,
) -> None:
    async def claim() -> bool:
        async with database.transaction() as repo:
            claimed = await repo.claim_event("telegram", "777")
            # Hold the transaction open so the other claims really overlap with it.
            await asyncio.sleep(0.05)
            return claimed

    results = await asyncio.gather(*(claim() for _ in range(4)))
    assert sorted(results) == [False, False, False, True]


async def test_a_second_checkin_on_the_same_local_date_edits_the_first(
    database: Database,
) -> None:
    async with database.transaction() as repo:
        user = await _new_user(repo)
        first = await repo.upsert_checkin(user.id, DAY, pain_now=5, phase=1, level=1)
        first_id, created_at = first.id, first.created_at
    async with database.transaction() as repo:
        second = await repo.upsert_checkin(
            user.id, DAY, pain_now=2, morning="settled", answers={"mini": ["R3"]}
        )
        assert second.id == first_id
    async with database.transaction() as repo:
        [checkin] = await repo.checkins_between(user.id, DAY - timedelta(days=1), DAY)
        assert checkin.id == first_id
        assert checkin.pain_now == 2  # edited
        assert checkin.morning == "settled"  # added
        assert checkin.phase == 1  # kept
        assert checkin.answers == {"mini": ["R3"]}
        assert checkin.created_at == created_at
        assert checkin.updated_at >= created_at

        # Another day is another check-in; the newest comes first in latest_checkins.
        await repo.upsert_checkin(user.id, DAY + timedelta(days=1), pain_now=1, phase=1, level=1)
        latest = await repo.latest_checkins(user.id, 5)
        assert [c.local_date for c in latest] == [DAY + timedelta(days=1), DAY]

        with pytest.raises(ValueError, match="phase"):
            await repo.upsert_checkin(user.id, DAY + timedelta(days=2), pain_now=1)
        with pytest.raises(TypeError, match="nonsense"):
            await repo.upsert_checkin(user.id, DAY, nonsense=1)


async def test_rows_for_a_missing_user_are_refused(database: Database) -> None:
    # Foreign keys are enforced on SQLite too (PRAGMA foreign_keys=ON on every connection).
    with pytest.raises(IntegrityError):
        async with database.transaction() as repo:
            await repo.upsert_checkin(12345, DAY, pain_now=1, phase=1, level=1)


async def test_logging_an_exercise_again_the_same_day_replaces_the_outcome(
    database: Database,
) -> None:
    async with database.transaction() as repo:
        user = await _new_user(repo)
        await repo.log_exercise(user.id, DAY, "clamshell", "skipped")
        await repo.log_exercise(user.id, DAY, "bridge", "done")
    async with database.transaction() as repo:
        await repo.log_exercise(user.id, DAY, "clamshell", "done")
        logs = await repo.exercise_logs_between(user.id, DAY, DAY)
        assert {(log.exercise_id, log.outcome) for log in logs} == {
            ("clamshell", "done"),
            ("bridge", "done"),
        }


async def test_timestamps_come_back_in_utc_also_on_sqlite(database: Database) -> None:
    berlin = datetime(2024, 3, 31, 1, 30, tzinfo=ZoneInfo("Europe/Berlin"))  # 00:30 UTC
    async with database.transaction() as repo:
        user = await _new_user(repo)
        user.next_checkin_at = berlin
        await repo.save_user(user)

    async with database.transaction() as repo:
        again = await repo.get_user("telegram", "u1")
        assert again is not None and again.next_checkin_at is not None
        assert again.next_checkin_at.tzinfo is UTC
        assert again.next_checkin_at == berlin
        assert again.next_checkin_at.hour == 0
        assert again.created_at.tzinfo is UTC

        # Range queries compare instants, whatever zone the bound value is in.
        due = await repo.session.scalars(
            select(User.id).where(User.next_checkin_at <= datetime(2024, 3, 31, 0, 30, tzinfo=UTC))
        )
        assert list(due) == [again.id]
        not_due = await repo.session.scalars(
            select(User.id).where(
                User.next_checkin_at < datetime(2024, 3, 31, 2, 29, tzinfo=ZoneInfo("Asia/Dubai"))
            )
        )
        assert list(not_due) == []

        stored = await repo.session.scalar(text("SELECT next_checkin_at FROM users"))
        if database.is_sqlite:
            assert str(stored).startswith("2024-03-31 00:30:00")  # UTC on disk, no offset
        else:
            assert stored == berlin


async def test_naive_datetimes_are_refused(database: Database) -> None:
    with pytest.raises(ValueError, match="naive"):
        UTCDateTime().process_bind_param(datetime(2024, 1, 1), database.engine.dialect)

    async with database.transaction() as repo:
        user = await _new_user(repo)
    with pytest.raises(StatementError) as refused:
        async with database.transaction() as repo:
            stale = await repo.get_user("telegram", "u1")
            assert stale is not None
            stale.next_checkin_at = datetime(2024, 1, 1, 8, 0)
            await repo.save_user(stale)
    assert isinstance(refused.value.orig, ValueError)
    async with database.transaction() as repo:
        again = await repo.get_user_by_id(user.id)
        assert again is not None and again.next_checkin_at is None


async def test_two_concurrent_turns_for_the_same_user_never_interleave(
    database: Database,
) -> None:
    async with database.transaction() as repo:
        user = await _new_user(repo)
        user.profile = {"taps": []}
        await repo.save_user(user)
        start_version = user.version

    async def turn(tap: str) -> str:
        async with database.transaction() as repo:
            current = await repo.get_user("telegram", "u1")
            assert current is not None
            taps = list(current.profile["taps"])
            # A slow turn: the other one starts while this one holds the user.
            await asyncio.sleep(0.05)
            current.profile = {**current.profile, "taps": [*taps, tap]}
            await repo.save_user(current)
        return tap

    outcomes = await asyncio.gather(turn("a"), turn("b"), return_exceptions=True)
    succeeded = [o for o in outcomes if isinstance(o, str)]
    failed = [o for o in outcomes if not isinstance(o, str)]
    assert all(isinstance(e, StaleDataError) for e in failed), failed

    async with database.transaction() as repo:
        final = await repo.get_user("telegram", "u1")
        assert final is not None
        # No lost update: every turn that succeeded is in the final state.
        assert sorted(final.profile["taps"]) == sorted(succeeded)
        assert final.version == start_version + len(succeeded)
    # Turns queue behind each other (row lock / SQLite write lock), so both land.
    assert sorted(succeeded) == ["a", "b"]


async def test_saving_a_stale_copy_of_a_user_raises(database: Database) -> None:
    async with database.transaction() as repo:
        await _new_user(repo)
    async with database.transaction() as repo:
        stale = await repo.get_user("telegram", "u1")
        assert stale is not None
    async with database.transaction() as repo:
        fresh = await repo.get_user("telegram", "u1")
        assert fresh is not None
        fresh.conversation = {"flow": "settings"}
        await repo.save_user(fresh)
    with pytest.raises(StaleDataError):
        async with database.transaction() as repo:
            stale.conversation = {"flow": "checkin"}
            await repo.save_user(stale)
    async with database.transaction() as repo:
        final = await repo.get_user("telegram", "u1")
        assert final is not None and final.conversation == {"flow": "settings"}


async def test_in_place_edits_of_the_conversation_are_saved(database: Database) -> None:
    async with database.transaction() as repo:
        user = await _new_user(repo)
        user.conversation["flow"] = "triage"  # mutating, not assigning
        user.profile.setdefault("answers", {})["R1"] = "no"
        await repo.save_user(user)
    async with database.transaction() as repo:
        again = await repo.get_user_by_id(user.id)
        assert again is not None
        assert again.conversation == {"flow": "triage"}
        assert again.profile == {"answers": {"R1": "no"}}


async def test_a_turns_save_writes_only_what_changed_and_still_moves_the_version_on(
    database: Database,
) -> None:
    from sqlalchemy import event

    async with database.transaction() as repo:
        await _new_user(repo)
    updates: list[str] = []

    def heard(_c: Any, _cur: Any, statement: str, *_rest: Any) -> None:
        if statement.startswith("UPDATE users"):
            updates.append(statement)

    event.listen(database.engine.sync_engine, "before_cursor_execute", heard)
    try:
        async with database.transaction() as repo:
            user = await repo.load_user("telegram", "u1")
            assert user is not None
            version = user.version
            user.next_checkin_at = NOW + timedelta(days=1)
            user.conversation = {"flow": "checkin"}  # a new value: written
            await repo.save_user(user)
            # Nothing changed since: only the version and the time move on.
            await repo.save_user(user)
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", heard)
    first, second = (u.split(" WHERE")[0] for u in updates)
    assert "next_checkin_at" in first and "conversation" in first
    assert "profile" not in first and "reminder_time" not in first and "timezone" not in first
    assert "next_checkin_at" not in second and "conversation" not in second
    async with database.transaction() as repo:
        again = await repo.get_user("telegram", "u1", lock=False)
        assert again is not None and again.version == version + 2
        assert again.next_checkin_at == NOW + timedelta(days=1)
        assert again.conversation == {"flow": "checkin"} and again.profile == {}


async def test_history_written_outside_a_turn_moves_the_users_version_on(
    database: Database,
) -> None:
    async with database.transaction() as repo:
        await _new_user(repo)
    async with database.transaction() as repo:
        user = await repo.get_user("telegram", "u1")
        assert user is not None
        start = user.version
        await repo.upsert_checkin(user.id, DAY, pain_now=2, phase=1, level=1)
        await repo.upsert_checkin(user.id, DAY, pain_now=3)  # an edit moves it on too
        await repo.log_exercise(user.id, DAY, "clamshell", "done")
        assert user.version == start + 3  # the copy in this session follows
        user.conversation = {"flow": "checkin"}
        await repo.save_user(user)  # and is not stale
    async with database.transaction() as repo:
        again = await repo.get_user("telegram", "u1", lock=False)
        assert again is not None and again.version == start + 4


async def test_a_concurrent_first_contact_creates_one_user(database: Database) -> None:
    async def first_contact() -> int:
        async with database.transaction() as repo:
            user = await repo.create_user("slack", "U42", "D42", "Bo")
            await asyncio.sleep(0.05)
            return user.id

    ids = await asyncio.gather(first_contact(), first_contact())
    assert ids[0] == ids[1]
    async with database.transaction() as repo:
        assert len(await repo.list_users()) == 1


async def test_export_holds_every_row_about_the_user(database: Database) -> None:
    async with database.transaction() as repo:
        ann = await _new_user(repo, "ann")
        bob = await _new_user(repo, "bob")
        await _everything_about(repo, ann)
        await _everything_about(repo, bob)
        await repo.claim_event("telegram", "5")

    async with database.transaction(readonly=True) as repo:
        export = await repo.export_user(ann.id)
        counts = await repo.row_counts_for_user(ann.id, ann.platform_user_id)

    round_tripped = json.loads(json.dumps(export))
    assert round_tripped == export
    assert export["user"]["platform_user_id"] == "ann"
    assert export["user"]["conversation"] == {"flow": "checkin", "step": "pain_now"}
    assert export["user"]["profile"] == {"phase": 1, "level": 2}
    assert export["checkins"][0]["local_date"] == DAY.isoformat()
    # Every table the scanner finds rows in is in the export, with the same number of rows,
    # so a table added later that refers to users fails here until export covers it.
    for table, count in counts.items():
        if count:
            exported = export.get("user" if table == "users" else table)
            assert exported is not None, f"export misses table {table}"
            rows = [exported] if table == "users" else exported
            assert len(rows) == count, table
    assert all(row.get("user_id", ann.id) == ann.id for row in export["checkins"])


async def test_delete_leaves_no_row_about_the_user_in_any_table(database: Database) -> None:
    async with database.transaction() as repo:
        ann = await _new_user(repo, "ann")
        bob = await _new_user(repo, "bob")
        await _everything_about(repo, ann)
        await _everything_about(repo, bob)
        before = await repo.row_counts_for_user(ann.id, "ann")
    assert set(before) == {t.name for t in Base.metadata.sorted_tables}
    assert before["users"] == before["checkins"] == before["warmup_schedules"] == 1

    async with database.transaction() as repo:
        assert await repo.delete_user(ann.id) is True
        assert await repo.delete_user(ann.id) is False

    async with database.transaction() as repo:
        after = await repo.row_counts_for_user(ann.id, "ann")
        assert after == dict.fromkeys(after, 0)
        assert await repo.get_user("telegram", "ann") is None
        # Bob keeps everything; the team keeps Ann's warm-up, no longer attributed to her.
        assert sum((await repo.row_counts_for_user(bob.id, "bob")).values()) == sum(before.values())
        warmups = list(await repo.session.scalars(select(WarmupSchedule)))
        assert sorted(str(w.created_by) for w in warmups) == ["None", "bob"]


async def test_escalations_open_acknowledge_and_clear(database: Database) -> None:
    async with database.transaction() as repo:
        user = await _new_user(repo)
        await repo.add_escalation(
            user.id, level="urgent", trigger="R9", flow="triage", message="...", created_at=NOW
        )
        assert await repo.acknowledge_escalations(user.id, NOW + timedelta(minutes=1)) == 1
        assert await repo.acknowledge_escalations(user.id, NOW + timedelta(minutes=2)) == 0
        [open_one] = await repo.open_escalations(user.id)
        assert open_one.acknowledged_at == NOW + timedelta(minutes=1)
        assert await repo.clear_escalations(user.id, NOW + timedelta(days=3)) == 1
        assert await repo.open_escalations(user.id) == []


async def test_team_warmups_are_added_listed_and_removed(database: Database) -> None:
    async with database.transaction() as repo:
        club = await repo.get_or_create_team_chat("slack", "C1", "Club")
        other = await repo.get_or_create_team_chat("slack", "C2", None)
        same = await repo.get_or_create_team_chat("slack", "C1", "Renamed club")
        assert same.id == club.id and same.title == "Renamed club"
        tue = await repo.add_warmup(club.id, "tue", "18:00", 30, "Europe/Berlin", "U1", NOW)
        thu = await repo.add_warmup(club.id, "thu", "18:30", 20, "Europe/Berlin", None, None)
        assert [w.id for w in await repo.list_warmups(club.id)] == [tue.id, thu.id]
        assert await repo.remove_warmup(other.id, tue.id) is False  # not that chat's
        assert await repo.remove_warmup(club.id, tue.id) is True
        assert await repo.remove_warmup(club.id, tue.id) is False
        club.conversation["step"] = "days"
        await repo.save_team_chat(club)
    async with database.transaction() as repo:
        again = await repo.get_team_chat("slack", "C1")
        assert again is not None and again.conversation == {"step": "days"}
        assert [w.id for w in await repo.list_warmups(club.id)] == [thu.id]


async def test_old_event_records_are_cleaned_up(database: Database) -> None:
    async with database.transaction() as repo:
        await repo.claim_event("telegram", "1")
        await repo.session.execute(
            text("UPDATE processed_events SET created_at = :at"),
            {"at": UTCDateTime().process_bind_param(NOW, database.engine.dialect)},
        )
        await repo.claim_event("telegram", "2")
    async with database.transaction() as repo:
        assert await repo.cleanup_events(NOW + timedelta(days=1)) == 1
        assert await repo.claim_event("telegram", "2") is False
    await database.ping()


def _schema_diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={
            "compare_type": True,
            "compare_server_default": True,
            # slack_sdk's store tables are compared with slack_sdk (tests/test_slack_oauth.py)
            "include_name": lambda name, type_, _parent: not (
                type_ == "table" and name in UNMAPPED_TABLES
            ),
        },
    )
    return list(compare_metadata(context, Base.metadata))


async def test_the_migrated_schema_matches_the_models(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_schema_diff) == []
    finally:
        await engine.dispose()


async def test_migrations_go_down_to_nothing_and_back_up(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # migrations are found from any working directory
    engine = create_engine(db_url)
    try:
        await downgrade_async(db_url, "base")
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
            assert set(tables) <= {"alembic_version"}
        await upgrade_async(db_url)
        await upgrade_async(db_url)  # already at head: nothing to do
        async with engine.connect() as conn:
            assert await conn.run_sync(_schema_diff) == []
    finally:
        await engine.dispose()


def test_database_urls_are_normalised(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    assert default_database_url() == f"sqlite+aiosqlite:///{tmp_path / 'hipcoach.db'}"
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p%40ss@db.example:5432/app")
    assert default_database_url() == "postgresql+asyncpg://u:p%40ss@db.example:5432/app"
    assert normalize_database_url("postgresql://h/db") == "postgresql+asyncpg://h/db"
    assert normalize_database_url("postgresql+psycopg2://h/db") == "postgresql+asyncpg://h/db"
    assert normalize_database_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    assert normalize_database_url("sqlite+aiosqlite:///x.db") == "sqlite+aiosqlite:///x.db"
