"""Block Kit rendering of Outbound values and home summaries, checked against the limits
the fake Slack API enforces (tests/fake_slack.block_problems)."""

from __future__ import annotations

from datetime import date

from bot.adapters.slack.render import (
    escape,
    pain_strip,
    render_home,
    render_outbound,
    render_plain,
    split_text,
    unescape,
)
from bot.engine.events import Button, Outbound
from bot.home import HomeItem, HomeSummary
from content.loader import default_content
from tests.fake_slack import block_problems


def test_text_is_escaped_for_mrkdwn_and_round_trips() -> None:
    assert escape("a & b <@U1> > c") == "a &amp; b &lt;@U1&gt; &gt; c"
    assert unescape(escape("<x> & y")) == "<x> & y"


def test_long_text_is_split_into_sections_of_at_most_3000_chars() -> None:
    text = "\n".join(f"line {n} & <more>" for n in range(600))
    pieces = split_text(text)
    assert len(pieces) > 1
    assert all(0 < len(p) <= 3000 for p in pieces)
    assert unescape("\n".join(pieces)) == text
    # no line breaks at all, and an escape sequence right at the cut
    blob = "x" * 2998 + "&" * 10
    assert all(len(p) <= 3000 and not p.endswith("&am") for p in split_text(blob))
    assert unescape("".join(split_text(blob))) == blob


def test_many_buttons_are_split_into_actions_blocks_and_messages() -> None:
    rows = tuple(tuple(Button(f"{r}-{c}", f"1:{r}-{c}") for c in range(30)) for r in range(40))
    messages = render_outbound(Outbound("D1", "pick one", buttons=rows), more_text="More:")
    assert len(messages) > 1
    for message in messages:
        assert not block_problems(message["blocks"])
        assert message["text"]
    values = [
        e["value"]
        for m in messages
        for b in m["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    ]
    assert values == [b.payload for row in rows for b in row]


def test_button_labels_are_cut_to_75_chars_and_long_payloads_dropped() -> None:
    out = Outbound(
        "D1",
        "q",
        buttons=((Button("L" * 200, "1:a"), Button("ok", "x" * 2001)),),
    )
    (message,) = render_outbound(out, more_text="More:")
    (actions,) = [b for b in message["blocks"] if b["type"] == "actions"]
    assert [len(e["text"]["text"]) for e in actions["elements"]] == [75]
    assert not block_problems(message["blocks"])


def test_an_open_dm_link_button_is_added() -> None:
    out = Outbound("C1", "personal", open_private=True)
    (message,) = render_outbound(out, more_text="", open_dm=("Open", "https://slack.com/x"))
    assert message["blocks"][-1]["elements"][0]["url"] == "https://slack.com/x"


def test_plain_render_has_no_buttons() -> None:
    rendered = render_plain("question\n→ answer")
    assert all(b["type"] == "section" for b in rendered["blocks"])


def test_home_views_stay_within_limits() -> None:
    content = default_content()
    welcome = render_home(HomeSummary(onboarded=False), content)
    assert welcome["type"] == "home" and not block_problems(welcome["blocks"], max_blocks=100)
    days = [date(2026, 11, d) for d in range(20, 27)]
    item = HomeItem("glute_bridge", "Glute bridge", "3 x 10 reps", (("d", "x:l:1"),) * 3)
    summary = HomeSummary(
        onboarded=True,
        phase=1,
        phase_name="Calm and protect",
        level=1,
        run_advice="easy",
        items=(item,) * 40,
        pain=tuple(zip(days, [1, None, 2, None, None, 3, 0], strict=True)),
        next_checkin="Fri 07:30 (Europe/Berlin)",
    )
    view = render_home(summary, content)
    assert not block_problems(view["blocks"], max_blocks=100)
    assert pain_strip(summary) == "Fri 1 · Sat – · Sun 2 · Mon – · Tue – · Wed 3 · Thu 0"
