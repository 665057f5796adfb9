"""Issue 13 on every platform: the summary for a physio is offered with SOON and URGENT
escalations, and arrives as a file in the runner's private chat only — also when asked
for in a Telegram group (fake Bot API) or a Slack channel (fake Slack API)."""

from __future__ import annotations

import io
from pathlib import Path

from pypdf import PdfReader

from bot.adapters.console import ConsoleChat
from bot.engine.events import Topic
from bot.service import Coach
from tests.chat_driver import NIGHT_PAIN, Chat, Clock, checkin, onboard, onboarding_taps
from tests.fake_telegram import FakeTelegram
from tests.test_slack import CHANNEL, RUNNER, Slack
from tests.test_slack import slack as slack  # a fixture, used by name
from tests.test_telegram import GROUP, Person, TrackingAdapter, private_chat, texts
from tests.test_telegram import bot as bot  # a fixture, used by name
from tests.test_telegram import fake as fake  # a fixture, used by name

SUMMARY = "Summary for my physio"


def referred_setup(zone: str | None = None) -> tuple[str, ...]:
    """The standard setup, except that cutting back for two weeks has not helped (R21): a
    SOON referral to a physio at the end of setup."""
    taps = list(onboarding_taps(zone=zone) if zone else onboarding_taps())
    at = taps.index("Easy runs only") + 1
    assert taps[at] == "No"
    taps[at] = "Yes"
    return tuple(taps)


def is_pdf(data: bytes) -> bool:
    return data.startswith(b"%PDF") and len(PdfReader(io.BytesIO(data)).pages) == 1


# --- the engine, through the service ---------------------------------------------------------


async def test_the_summary_button_comes_with_urgent_and_soon_escalations_not_emergencies(
    chat: Chat, clock: Clock
) -> None:
    await onboard(chat, r21="Yes")  # SOON (R21): book a physio
    referral = [r for r in chat.replies if r.topic == Topic.REFERRAL]
    assert referral and SUMMARY in [b.label for b in referral[-1].flat_buttons]
    clock.advance(days=1)
    await checkin(chat, screen=NIGHT_PAIN)  # URGENT (R11): a doctor today
    urgent = [r for r in chat.replies if r.topic == Topic.ESCALATION]
    assert urgent and SUMMARY in [b.label for b in urgent[-1].flat_buttons]
    replies = await chat.press(SUMMARY)
    (pdf,) = [r.attachment for r in replies if r.attachment is not None]
    assert pdf.mime == "application/pdf" and is_pdf(pdf.data)
    assert all(r.private for r in replies)


async def test_an_emergency_message_stands_alone(chat: Chat, clock: Clock) -> None:
    await onboard(chat)
    clock.advance(days=1)
    screen = {"s/m": "Yes, one or more", "s/mi:nerves": "Yes", "s/i:R1": "Yes"}
    await checkin(chat, screen=screen)
    emergency = [r for r in chat.replies if r.topic == Topic.ESCALATION]
    assert emergency and "emergency" in emergency[-1].text.lower()
    assert not emergency[-1].buttons


async def test_the_console_saves_the_summary_and_prints_its_path(
    coach: Coach, tmp_path: Path
) -> None:
    out = io.StringIO()
    console = ConsoleChat(coach, files_dir=tmp_path / "files", out=out)
    for line in ("start", *referred_setup()):
        await console.type_line(line)
    assert SUMMARY in [b.label for b in console.buttons]
    await console.type_line(SUMMARY)
    (saved,) = (tmp_path / "files").glob("*.pdf")
    assert is_pdf(saved.read_bytes())
    assert f"[file saved: {saved}]" in out.getvalue()


# --- Telegram ------------------------------------------------------------------------------


async def test_telegram_offers_the_summary_and_sends_it_to_the_private_chat_even_from_a_group(
    fake: FakeTelegram, bot: TrackingAdapter
) -> None:
    me = Person(fake, bot, 5001, private_chat(5001))
    await me.send("/start")
    calls = await me.taps(*referred_setup())
    offered = [c for c in calls if any(b["text"] == SUMMARY for b in c.buttons)]
    assert offered and offered[-1].chat_id == "5001"

    calls = await me.tap(SUMMARY)
    documents = [c for c in calls if c.method == "sendDocument"]
    assert [d.chat_id for d in documents] == ["5001"]
    filename, data = documents[0].files["document"]
    assert filename.endswith(".pdf") and is_pdf(data)

    # Asked for in the club's group: the file goes to the private chat, the group only
    # hears where it went.
    in_group = Person(fake, bot, 5001, GROUP)
    calls = await in_group.send("/summary")
    documents = [c for c in calls if c.method == "sendDocument"]
    assert [d.chat_id for d in documents] == ["5001"]
    group_calls = [c for c in calls if c.chat_id == str(GROUP["id"])]
    assert group_calls and all(c.method == "sendMessage" for c in group_calls)
    assert "private chat" in texts(group_calls)
    assert not [c for c in fake.calls if c.chat_id == str(GROUP["id"]) and c.files]


async def test_telegram_someone_without_a_plan_asking_in_a_group_gets_no_file(
    fake: FakeTelegram, bot: TrackingAdapter
) -> None:
    stranger = Person(fake, bot, 6002, GROUP, name="Kim")
    calls = await stranger.send("/summary")
    assert not [c for c in calls if c.method == "sendDocument"]
    assert "private chat" in texts(calls)


# --- Slack ---------------------------------------------------------------------------------


async def test_slack_offers_the_summary_and_uploads_it_to_the_dm_even_from_a_channel(
    slack: Slack,
) -> None:
    fake = slack.fake
    await slack.slash("start")
    await slack.press_all(*referred_setup(zone="Use Europe/Berlin"))
    offered = [
        c
        for c in fake.of("chat.postMessage", channel=f"D{RUNNER}")
        if any(b.get("text", {}).get("text") == SUMMARY for b in c.buttons)
    ]
    assert offered

    await slack.press(SUMMARY)
    upload = fake.last("files.completeUploadExternal")
    assert upload["channel_id"] == f"D{RUNNER}"
    assert is_pdf(upload["_data"][0])

    uploads = len(fake.of("files.completeUploadExternal"))
    await slack.slash("summary", channel=CHANNEL)
    files = fake.of("files.completeUploadExternal")
    assert len(files) == uploads + 1
    assert files[-1]["channel_id"] == f"D{RUNNER}" and is_pdf(files[-1]["_data"][0])
    note = fake.last("chat.postEphemeral", channel=CHANNEL, user=RUNNER)
    assert "private chat" in note.text
    assert not fake.of("chat.postMessage", channel=CHANNEL)
    assert all(f["channel_id"] != CHANNEL for f in files)


async def test_slack_app_home_offers_the_summary(slack: Slack) -> None:
    await slack.slash("start")
    await slack.press_all(*onboarding_taps(zone="Use Europe/Berlin"))
    home = await slack.home_opened()
    assert SUMMARY in [b["text"]["text"] for b in home.buttons]
    await slack.press(SUMMARY)
    upload = slack.fake.last("files.completeUploadExternal")
    assert upload["channel_id"] == f"D{RUNNER}" and is_pdf(upload["_data"][0])
