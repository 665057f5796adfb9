"""Outbound values and home summaries as Block Kit, within Slack's documented limits.

Pure functions, no I/O: the adapter sends what these return. Blocks are built with
slack_sdk's block models, whose `to_dict()` validates the limits (button text 75 chars,
value 2000, section text 3000).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.engine import hints
from bot.engine.events import Button, Outbound
from bot.home import HomeSummary
from content.loader import Content

log = logging.getLogger("hipcoach.slack")

SECTION_TEXT_MAX = 3000
BUTTON_TEXT_MAX = 75
BUTTON_VALUE_MAX = 2000
ACTIONS_MAX = 25  # elements per actions block
BLOCKS_MAX = 50  # blocks per message
VIEW_BLOCKS_MAX = 100  # blocks per Home tab view
FALLBACK_TEXT_MAX = 3000  # the notification text; Slack allows more, nobody reads more

ACTION_PREFIX = "hip_"  # buttons whose value is an engine payload or a "cmd:<word>"
URL_ACTION_ID = "hipurl_open_dm"  # link buttons: acknowledged, nothing else
COMMAND_VALUE_PREFIX = "cmd:"

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
SLASH_COMMAND = "/hip"  # the app's one slash command (slack/manifest.yml)
COMMAND_PREFIX = SLASH_COMMAND + " "


def render_text(text: str) -> str:
    """The engine's text as Slack shows it: command hints as /hip word
    (bot/engine/hints.py). Plain text still; `escape` makes it mrkdwn."""
    return hints.render(text, COMMAND_PREFIX)


def escape(text: str) -> str:
    """Make text safe for Slack's mrkdwn: only &, < and > need escaping."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """Message text arrives with &, < and > escaped; give the engine what the person typed."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def split_text(text: str, limit: int = SECTION_TEXT_MAX) -> list[str]:
    """Escaped text in pieces of at most `limit` chars, cut at line ends where possible and
    never inside an escape sequence."""
    escaped = escape(text)
    pieces: list[str] = []
    while len(escaped) > limit:
        cut = escaped.rfind("\n", 0, limit + 1)
        if cut <= 0:
            cut = escaped.rfind(" ", 0, limit + 1)
        if cut <= 0:
            cut = limit
            amp = escaped.rfind("&", cut - 5, cut)
            if amp != -1 and ";" not in escaped[amp:cut]:
                cut = amp
        pieces.append(escaped[:cut].rstrip("\n"))
        escaped = escaped[cut:].lstrip("\n")
    if escaped.strip() or not pieces:
        pieces.append(escaped)
    return [p if p.strip() else " " for p in pieces]


def _label(text: str) -> str:
    return text if len(text) <= BUTTON_TEXT_MAX else text[: BUTTON_TEXT_MAX - 1] + "…"


def button(action_id: str, label: str, value: str, *, style: str | None = None) -> ButtonElement:
    return ButtonElement(
        text=PlainTextObject(text=_label(label), emoji=True),
        action_id=action_id,
        value=value,
        style=style,
    )


def _fallback(text: str) -> str:
    escaped = escape(text)
    if len(escaped) <= FALLBACK_TEXT_MAX:
        return escaped
    return escaped[: FALLBACK_TEXT_MAX - 1] + "…"


def text_blocks(text: str) -> list[Block]:
    return [SectionBlock(text=MarkdownTextObject(text=piece)) for piece in split_text(text)]


def render_outbound(
    out: Outbound,
    *,
    more_text: str,
    open_dm: tuple[str, str] | None = None,
) -> list[dict[str, Any]]:
    """One Outbound as one or more chat.postMessage payloads ({"text", "blocks"}).

    Each button row becomes an actions block (split at 25 elements); when the blocks pass
    50 the rest go into follow-up messages. `open_dm` is (label, url) for a link button that
    opens the app's direct messages."""
    out = replace(out, text=render_text(out.text))
    blocks: list[Block] = text_blocks(out.text)
    for row in out.buttons:
        usable = [b for b in row if _usable(b)]
        for start in range(0, len(usable), ACTIONS_MAX):
            chunk = usable[start : start + ACTIONS_MAX]
            blocks.append(ActionsBlock(elements=[_engine_button(b) for b in chunk]))
    if open_dm is not None:
        label, url = open_dm
        blocks.append(
            ActionsBlock(
                elements=[ButtonElement(text=_label(label), action_id=URL_ACTION_ID, url=url)]
            )
        )
    messages: list[dict[str, Any]] = []
    for start in range(0, len(blocks), BLOCKS_MAX):
        part = blocks[start : start + BLOCKS_MAX]
        text = _fallback(out.text) if start == 0 else escape(more_text)
        messages.append({"text": text, "blocks": _numbered(part)})
    return messages


def render_edit(out: Outbound, *, more_text: str) -> dict[str, Any]:
    """An edit for chat.update: text only for an answered question, or the message with
    its buttons when it changes in place (today's card). An edit is one message, so only
    the first part of a long one is kept."""
    if not out.buttons:
        return render_plain(out.text)
    return render_outbound(out, more_text=more_text)[0]


def render_plain(text: str) -> dict[str, Any]:
    """Text only (e.g. an answered question after chat.update): no buttons."""
    text = render_text(text)
    return {"text": _fallback(text), "blocks": [b.to_dict() for b in text_blocks(text)]}


def _usable(b: Button) -> bool:
    if len(b.payload) > BUTTON_VALUE_MAX or not b.payload:
        log.warning("button dropped: payload of %d chars", len(b.payload))
        return False
    return True


def _engine_button(b: Button) -> ButtonElement:
    return button(ACTION_PREFIX, b.label, b.payload)


def _numbered(blocks: list[Block]) -> list[dict[str, Any]]:
    """Block dicts with a unique action_id per engine button in the message."""
    out: list[dict[str, Any]] = []
    n = 0
    for block in blocks:
        data = block.to_dict()
        for element in data.get("elements", []):
            if element.get("action_id") == ACTION_PREFIX:
                n += 1
                element["action_id"] = f"{ACTION_PREFIX}{n}"
        out.append(data)
    return out


# --- App Home ------------------------------------------------------------------------------


def pain_strip(summary: HomeSummary) -> str:
    """E.g. "Mon 2 · Tue – · Wed 3"."""
    return " · ".join(
        f"{_WEEKDAYS[day.weekday()]} {'–' if pain is None else pain}" for day, pain in summary.pain
    )


def render_home(summary: HomeSummary, content: Content) -> dict[str, Any]:
    """The App Home tab (views.publish) for one runner."""

    def t(key: str, **kw: Any) -> str:
        return render_text(content.message(key, **kw))

    blocks: list[Block] = []
    n = 0

    def action(label: str, value: str, style: str | None = None) -> ButtonElement:
        nonlocal n
        n += 1
        return button(f"{ACTION_PREFIX}{n}", label, value, style=style)

    if not summary.onboarded and not summary.plan_paused:
        blocks += [
            HeaderBlock(text=t("slack_home_welcome_title")),
            SectionBlock(text=MarkdownTextObject(text=escape(t("slack_home_welcome")))),
            ActionsBlock(
                elements=[action(t("slack_home_start"), COMMAND_VALUE_PREFIX + "start", "primary")]
            ),
        ]
        return View(type="home", blocks=blocks).to_dict()

    blocks.append(HeaderBlock(text=t("slack_home_title")))
    if summary.phase is not None and summary.phase_name is not None:
        phase = t(
            "slack_home_phase", phase=summary.phase, name=summary.phase_name, level=summary.level
        )
        blocks.append(SectionBlock(text=MarkdownTextObject(text=f"*{escape(phase)}*")))
    if summary.plan_paused:
        blocks.append(
            SectionBlock(text=MarkdownTextObject(text=escape(t("slack_home_plan_paused"))))
        )
    else:
        blocks.append(DividerBlock())
        blocks.append(
            SectionBlock(text=MarkdownTextObject(text=f"*{escape(t('slack_home_today'))}*"))
        )
        if summary.run_advice:
            blocks += text_blocks(t("slack_home_running", advice=summary.run_advice))
        if not summary.items:
            blocks += text_blocks(t("slack_home_no_exercises"))
        labels = {
            "d": t("slack_home_done"),
            "p": t("slack_home_painful"),
            "s": t("slack_home_skip"),
        }
        outcome_words = {
            "done": t("log_outcome_done"),
            "painful": t("log_outcome_painful"),
            "skipped": t("log_outcome_skipped"),
        }
        for number, item in enumerate(summary.items, start=1):
            line = f"*{number}. {escape(item.name)}* — {escape(item.dosage)}"
            if item.logged:
                logged = t("slack_home_logged", outcome=outcome_words.get(item.logged, ""))
                line += f"\n_{escape(logged)}_"
            blocks.append(SectionBlock(text=MarkdownTextObject(text=line)))
            blocks.append(
                ActionsBlock(
                    elements=[action(labels[code], value) for code, value in item.log_payloads]
                )
            )
    blocks.append(DividerBlock())
    strip = pain_strip(summary) if any(p is not None for _, p in summary.pain) else None
    pain_text = f"*{escape(t('slack_home_pain'))}*\n" + escape(strip or t("slack_home_pain_none"))
    blocks.append(SectionBlock(text=MarkdownTextObject(text=pain_text)))
    if summary.paused and summary.paused_until and summary.next_checkin:
        next_text = t(
            "slack_home_next_paused_until", day=summary.paused_until, when=summary.next_checkin
        )
    elif summary.paused:
        next_text = t("slack_home_next_paused")
    elif summary.next_checkin:
        next_text = t("slack_home_next", when=summary.next_checkin)
    else:
        next_text = t("slack_home_next_none")
    blocks.append(SectionBlock(text=MarkdownTextObject(text=escape(next_text))))
    toggle = (
        action(t("slack_home_resume"), COMMAND_VALUE_PREFIX + "resume")
        if summary.paused
        else action(t("slack_home_pause"), COMMAND_VALUE_PREFIX + "pause")
    )
    blocks.append(
        ActionsBlock(
            elements=[
                action(t("slack_home_checkin"), COMMAND_VALUE_PREFIX + "checkin", "primary"),
                toggle,
                action(t("slack_home_settings"), COMMAND_VALUE_PREFIX + "settings"),
                # Issue 13: the one-page summary for a physio, as a file in the DM.
                action(t("opt_physio_summary"), COMMAND_VALUE_PREFIX + "summary"),
            ]
        )
    )
    blocks.append(ContextBlock(elements=[PlainTextObject(text=t("slack_home_footer"))]))
    if len(blocks) > VIEW_BLOCKS_MAX:
        blocks = [*blocks[: VIEW_BLOCKS_MAX - 1], blocks[-1]]
    return View(type="home", blocks=blocks).to_dict()
