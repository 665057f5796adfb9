"""Command hints: the engine names a command, each adapter writes it for its platform.

A message that tells someone what to type ("An admin can set it up with: warmup add ...")
carries the command as a neutral token (written `{cmd:warmup add ...}` in messages.yaml,
see content/loader.py). The text the engine produces never says how to type a command;
each adapter renders the tokens as its platform needs them: Telegram `/warmup add ...`
(with privacy mode on, a group only delivers text that starts with a slash), Slack
`/hip warmup add ...`, the console `warmup add ...`.
"""

from __future__ import annotations

import re

from content.loader import CMD_CLOSE, CMD_OPEN

TOKEN = re.compile(f"{CMD_OPEN}([^{CMD_OPEN}{CMD_CLOSE}]*){CMD_CLOSE}")
# What is left of a token an adapter did not render (never shown to a person).
MARKS = (CMD_OPEN, CMD_CLOSE)


def command(words: str) -> str:
    """A command hint built in code, e.g. command("warmup list")."""
    return f"{CMD_OPEN}{' '.join(words.split())}{CMD_CLOSE}"


def commands_in(text: str) -> list[str]:
    """The commands a text names, as words ("warmup add tue,thu 18:00")."""
    return TOKEN.findall(text)


def render(text: str, prefix: str) -> str:
    """Every hint in `text` written with the platform's prefix ("/", "/hip ", "")."""
    if CMD_OPEN not in text:
        return text
    return TOKEN.sub(lambda m: prefix + m[1], text)


def plain(text: str) -> str:
    """The text with its hints as bare words (for logs, tests and lengths)."""
    return render(text, "")
