"""Every command hint the coach can give is written the way each platform needs it.

The engine names commands (bot/engine/hints.py); each adapter renders them. Every message
template (messages.yaml, with the flows' questions among them) and every other text in the
content goes through each platform's real renderer, and no hint may lack that platform's
prefix: Telegram `/word` (privacy mode hands a group nothing else), Slack `/hip word`,
the console a bare `word`.
"""

from __future__ import annotations

import io
import re
import string
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.adapters import console
from bot.adapters.slack import render as slack_render
from bot.adapters.telegram import convert
from bot.engine import hints
from bot.engine.events import COMMANDS, Outbound
from content.loader import DATA_DIR, default_content, load_content

WORD = "|".join(COMMANDS)
SUBCOMMANDS = r"add|remove|list|tz|card"
# A command word where a person is told to type it: after "type", "try", "use", "send",
# "with" (up to a short list of other commands: "Try today, checkin or progress"), at the
# start of a line of the help list, before a subcommand ("warmup add"), or in a list of
# commands each followed by what it is for ("today for your exercises, checkin for ...").
_OCCURRENCE = re.compile(rf"(?<![\w-])({WORD})(?![\w'’-])")  # commands are lower case
_AFTER_VERB = re.compile(
    rf"(?i)\b(?:type|try|use|send(?: me)?|with|dm me|then)\b:?\s+"
    rf"(?:(?:/hip |/)?(?:{WORD})(?:,|\s+or|\s+and)\s+){{0,4}}(?:/hip |/)?$"
)
_LINE_START = re.compile(r"(?:^|\n)\s*(?:/hip |/)?$")
_LIST_ITEM = re.compile(r"(?:,|:|\bor)\s+(?:/hip |/)?$")


def hint_positions(text: str) -> Iterator[re.Match[str]]:
    for match in _OCCURRENCE.finditer(text):
        before, after = text[: match.start()], text[match.end() :]
        if (
            _AFTER_VERB.search(before)
            or (_LINE_START.search(before) and re.match(r"\s*(?:—|,|/ )", after))
            or re.match(rf"\s+(?:{SUBCOMMANDS})\b", after)
            or (_LIST_ITEM.search(before) and re.match(r"\s+(?:for|to)\b", after))
        ):
            yield match


def bare_hints(text: str, prefix: str) -> list[str]:
    """The hints in rendered `text` that lack the platform's command prefix."""
    return [
        f"…{text[max(0, m.start() - 30) : m.end() + 10]}…"
        for m in hint_positions(text)
        if not text[: m.start()].endswith(prefix)
    ]


def _telegram(text: str) -> str:
    return convert.render_text(text)


def _slack(text: str) -> str:
    """What Slack shows: the block texts of the real chat.postMessage payload."""
    (message,) = slack_render.render_outbound(Outbound(chat_id="D1", text=text), more_text="…")
    shown = [b["text"]["text"] for b in message["blocks"] if b.get("type") == "section"]
    return slack_render.unescape("\n".join(shown))


def _console(text: str) -> str:
    out = io.StringIO()
    chat = console.ConsoleChat(coach=None, out=out)  # type: ignore[arg-type]
    chat.show([Outbound(chat_id="local", text=text)])
    return "\n".join(
        line[2:] if line.startswith("  ") else line for line in out.getvalue().split("\n")
    )


RENDERERS: dict[str, tuple[Callable[[str], str], str]] = {
    "telegram": (_telegram, "/"),
    "slack": (_slack, "/hip "),
    "console": (_console, ""),
}


def _filled(template: str) -> str:
    parsed = list(string.Formatter().parse(template))
    # A number where the template formats one ({change:+d}), a word elsewhere.
    fields = {name: 7 if spec and spec[-1] in "dfg" else "7" for _, name, spec, _ in parsed if name}
    return template.format(**fields)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def every_template() -> dict[str, str]:
    """Every message template, filled in, and every other text of the content files
    (flows, screen, triage, exercises, tips, warm-ups) by file and position."""
    content = default_content()
    texts = {f"messages.yaml:{key}": _filled(text) for key, text in content.messages.items()}
    for path in sorted(DATA_DIR.rglob("*.yaml")):
        if path.name == "messages.yaml":
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for n, text in enumerate(_strings(data)):
            texts[f"{path.relative_to(DATA_DIR)}[{n}]"] = text
    return texts


@pytest.mark.parametrize("platform", list(RENDERERS))
def test_no_template_gives_a_hint_without_the_platforms_prefix(platform: str) -> None:
    render, prefix = RENDERERS[platform]
    problems: dict[str, list[str]] = {}
    rendered_hints = 0
    for where, template in every_template().items():
        shown = render(template)
        assert not any(mark in shown for mark in hints.MARKS), f"{where}: a hint left unrendered"
        for command in hints.commands_in(template):
            assert f"{prefix}{command}" in shown, f"{where}: {command!r} not rendered"
            rendered_hints += 1
        bare = bare_hints(shown, prefix)
        if bare:
            problems[where] = bare
    assert not problems, f"{platform}: hints without {prefix!r}: {problems}"
    assert rendered_hints > 40  # the content really names its commands


def test_the_check_catches_hints_written_as_plain_words() -> None:
    """The old wording, before the engine named its commands, fails the check."""
    old = {
        "An admin can set it up with: warmup add tue,thu 18:00 before 15": ["warmup"],
        "Sorry, I didn't follow that. Try today, checkin or progress — or help for more.": [
            "today",
            "checkin",
            "progress",
            "help",
        ],
        "Any time: today for your exercises, checkin for the daily check-in.": [
            "today",
            "checkin",
        ],
        "start — set up\ncheckin — the daily check-in\npause / resume — reminders": [
            "start",
            "checkin",
            "pause",
        ],
        "Reminders paused. Type resume whenever you're ready.": ["resume"],
        "export or delete it any time with /hip export or /hip delete.": [],
    }
    for text, words in old.items():
        found = [
            m[1] for m in hint_positions(text) if not text[: m.start()].endswith(("/", "/hip "))
        ]
        assert found == words, (text, found)
    # Ordinary words are not hints.
    for text in (
        "Your plan starts today, in phase 1.",
        "We start the walk–run ladder.",
        "Only start this once standing on the sore leg hurts no more than 2/10.",
        "Today — phase 1 · Calm (level 1)",
    ):
        assert list(hint_positions(text)) == [], text


def test_a_hint_naming_no_command_is_refused_at_load(tmp_path: Path) -> None:
    from bot.engine.flows import interpreter

    for path in DATA_DIR.rglob("*"):
        target = tmp_path / path.relative_to(DATA_DIR)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    messages = tmp_path / "messages.yaml"
    messages.write_text(
        messages.read_text(encoding="utf-8").replace("{cmd:today}", "{cmd:tody}", 1),
        encoding="utf-8",
    )
    with pytest.raises(interpreter.FlowError, match="tody"):
        interpreter.check_content(load_content(tmp_path))
