"""The red-flag screen as a small queue of questions (clinical rules section 1, G3-G5).

Groups are asked first ("do any of these apply?"); only a "yes" or "not sure" opens the
group item by item. A "yes" in the daily mini-screen asks its matching rows (G5) and then
the rest of the full screen (G4: a new symptom). Answers already given in the same flow
are not asked again, and items already known to be "yes" (R16 from a pain score of 7/10
or more, P9) are set before the first question. Once an answer escalates, questions that
could not make the level any worse are skipped: red flags win. The state is a plain dict
so it can live in the conversation JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.engine.rules.screen import unsure_level
from content.loader import Content
from content.schema import Level, ScreenItem

YES, NO, UNSURE = "yes", "no", "unsure"
# Answers that raise nothing ("none of these" for a group, "no" for an item).
NEGATIVE_ANSWERS = frozenset({NO})
GROUP_ORDER = ("nerves", "injury", "bone", "other")


@dataclass(frozen=True)
class ScreenQuestion:
    qid: str
    text: str
    options: list[tuple[str, str]]


@dataclass(frozen=True)
class ScreenOutcome:
    level: Level
    triggers: tuple[str, ...]  # the item ids that set the level
    summary: str  # lay words for the escalation message
    answers: dict[str, str]

    @property
    def clear(self) -> bool:
        return self.level == Level.SELF


def _new(kind: str, queue: list[str], known: dict[str, str] | None) -> dict[str, Any]:
    return {"kind": kind, "queue": queue, "ans": dict(known or {}), "lv": {}}


def start_full(
    data: dict[str, Any],
    kind: str = "full",
    *,
    known: dict[str, str] | None = None,
    preset: tuple[str, ...] = (),
    content: Content | None = None,
) -> None:
    data["scr"] = _new(kind, [f"g:{g}" for g in GROUP_ORDER], known)
    for item_id in preset:
        assert content is not None
        _yes_known(content.screen_item(item_id), data["scr"])


def start_mini(data: dict[str, Any], *, known: dict[str, str] | None = None) -> None:
    data["scr"] = _new("mini", ["m"], known)


def start_items(
    data: dict[str, Any],
    item_ids: list[str],
    kind: str = "item",
    *,
    known: dict[str, str] | None = None,
) -> None:
    data["scr"] = _new(kind, [f"i:{i}" for i in item_ids], known)


def _yes_known(item: ScreenItem, scr: dict[str, Any]) -> None:
    """An item already known to be yes: the worst level a yes to it can give."""
    scr["ans"][item.id] = YES
    scr["lv"][item.id] = _item_max(item).value


def active(data: dict[str, Any]) -> bool:
    scr = data.get("scr")
    return bool(scr and scr.get("queue"))


def _yes_no_unsure(content: Content, unsure_key: str = "opt_unsure") -> list[tuple[str, str]]:
    return [
        (NO, content.message("opt_no")),
        (YES, content.message("opt_yes")),
        (UNSURE, content.message(unsure_key)),
    ]


def _item_max(item: ScreenItem) -> Level:
    levels = [o.level for o in item.follow_up.options] if item.follow_up else [item.yes_level]
    return Level.worst(*levels, *(c.level for c in item.combinations))


def _queued_max(qid: str, content: Content) -> Level:
    kind, _, ref = qid.partition(":")
    if kind == "g":
        group = next(g for g in content.screen.groups if g.id == ref)
        return Level.worst(*(_item_max(content.screen_item(i)) for i in group.items))
    if kind == "m":
        rows = [r for m in content.screen.mini for r in m.rows]
        return Level.worst(*(_item_max(content.screen_item(r)) for r in rows))
    if kind == "mi":
        mini = next(m for m in content.screen.mini if m.id == ref)
        return Level.worst(*(_item_max(content.screen_item(r)) for r in mini.rows))
    return _item_max(content.screen_item(ref))


def _useless(qid: str, scr: dict[str, Any], content: Content, current: Level) -> bool:
    """A question that cannot change the outcome: everything it asks is known, or (once
    the level escalates, `current` being the level reached) nothing it could open is worse
    than that."""
    kind, _, ref = qid.partition(":")
    ans: dict[str, str] = scr["ans"]
    if kind == "g":
        group = next(g for g in content.screen.groups if g.id == ref)
        if all(i in ans for i in group.items):
            return True
    elif kind == "i" and ref in ans:
        return True
    elif kind in ("m", "mi"):
        # Every row already answered in this flow (a full screen a moment ago).
        minis = [m for m in content.screen.mini if kind == "m" or m.id == ref]
        if all(r in ans for m in minis for r in m.rows):
            return True
    return current.escalates and _queued_max(qid, content).rank <= current.rank


def next_question(data: dict[str, Any], content: Content) -> ScreenQuestion | None:
    scr = data["scr"]
    queue: list[str] = scr["queue"]
    # The level reached so far: worked out once, not for each question skipped (it was a
    # good part of a screening turn's CPU); skipping questions does not change it.
    current = Level.worst(*(Level(v) for v in scr["lv"].values()))
    while queue and _useless(queue[0], scr, content, current):
        queue.pop(0)
    if not queue:
        return None
    qid: str = queue[0]
    kind, _, ref = qid.partition(":")
    if kind == "g":
        group = next(g for g in content.screen.groups if g.id == ref)
        bullets = "\n".join(f"• {content.screen_item(i).summary}" for i in group.items)
        text = f"{group.intro}\n{bullets}"
        options = [
            (NO, content.message("screen_none_apply")),
            (YES, content.message("screen_some_apply")),
            (UNSURE, content.message("opt_unsure")),
        ]
        return ScreenQuestion(qid, text, options)
    if kind == "m":
        bullets = "\n".join(f"• {m.question}" for m in content.screen.mini)
        text = f"{content.message('mini_intro')}\n{bullets}"
        options = [
            (NO, content.message("screen_none_apply")),
            (YES, content.message("screen_some_apply")),
            (UNSURE, content.message("opt_unsure")),
        ]
        return ScreenQuestion(qid, text, options)
    if kind == "mi":
        mini = next(m for m in content.screen.mini if m.id == ref)
        return ScreenQuestion(qid, mini.question, _yes_no_unsure(content))
    item = content.screen_item(ref)
    if kind == "i":
        return ScreenQuestion(qid, item.question, _yes_no_unsure(content))
    if kind == "c":
        return ScreenQuestion(qid, item.clarify, _yes_no_unsure(content, "opt_still_unsure"))
    if kind == "f":
        assert item.follow_up is not None
        options = [(o.id, o.label) for o in item.follow_up.options]
        return ScreenQuestion(qid, item.follow_up.question, options)
    raise ValueError(f"unknown screen question {qid!r}")


def answer(data: dict[str, Any], qid: str, value: str, content: Content) -> None:
    """Record one answer and queue whatever it opens."""
    scr = data["scr"]
    queue: list[str] = scr["queue"]
    if not queue or queue[0] != qid:
        raise ValueError(f"screen is not waiting for {qid!r}")
    queue.pop(0)
    kind, _, ref = qid.partition(":")
    ans: dict[str, str] = scr["ans"]
    levels: dict[str, str] = scr["lv"]
    if kind == "g":
        group = next(g for g in content.screen.groups if g.id == ref)
        unknown = [i for i in group.items if i not in ans]
        if value == NO:
            for i in unknown:
                ans[i] = NO
        else:
            queue[0:0] = [f"i:{i}" for i in unknown]
    elif kind == "m":
        if value == NO:
            for m in content.screen.mini:
                ans[f"mini_{m.id}"] = NO
                _rows_no(m.rows, ans)
        else:
            queue[0:0] = [f"mi:{m.id}" for m in content.screen.mini]
    elif kind == "mi":
        mini = next(m for m in content.screen.mini if m.id == ref)
        ans[f"mini_{mini.id}"] = value
        if value == NO:
            _rows_no(mini.rows, ans)  # the mini question asks the same, in fewer words
        else:
            queue[0:0] = [f"i:{r}" for r in mini.rows if r not in ans]
            if scr["kind"] == "mini":
                # G4: a new symptom brings the full screen, after its own rows (G5).
                scr["kind"] = "full"
                queue.extend(f"g:{g}" for g in GROUP_ORDER)
    elif kind == "i":
        item = content.screen_item(ref)
        if value == NO:
            ans[ref] = NO
        elif value == YES:
            _yes(item, ans, levels, queue)
        else:
            queue.insert(0, f"c:{ref}")
    elif kind == "c":
        item = content.screen_item(ref)
        if value == NO:
            ans[ref] = NO
        elif value == YES:
            _yes(item, ans, levels, queue)
        else:
            ans[ref] = UNSURE
            levels[ref] = unsure_level(item).value
    elif kind == "f":
        item = content.screen_item(ref)
        assert item.follow_up is not None
        option = next(o for o in item.follow_up.options if o.id == value)
        ans[ref] = YES
        ans[f"{ref}_detail"] = option.id
        levels[ref] = option.level.value


def _rows_no(rows: list[str], ans: dict[str, str]) -> None:
    for row in rows:
        ans.setdefault(row, NO)


def _yes(item: ScreenItem, ans: dict[str, str], levels: dict[str, str], queue: list[str]) -> None:
    if item.follow_up is not None:
        queue.insert(0, f"f:{item.id}")
    else:
        assert item.yes_level is not None
        ans[item.id] = YES
        levels[item.id] = item.yes_level.value


def outcome(data: dict[str, Any], content: Content) -> ScreenOutcome:
    scr = data["scr"]
    ans: dict[str, str] = scr["ans"]
    levels = {k: Level(v) for k, v in scr["lv"].items()}
    flagged = {k for k, v in ans.items() if v in (YES, UNSURE) and k in levels}
    for item_id in list(flagged):
        item = content.screen_item(item_id)
        for combo in item.combinations:
            if flagged & set(combo.with_any):
                levels[item_id] = Level.worst(levels[item_id], combo.level)
    level = Level.worst(*levels.values())
    triggers = tuple(k for k, lv in levels.items() if lv == level and level != Level.SELF)
    summary = "; ".join(content.screen_item(t).summary for t in triggers)
    return ScreenOutcome(level=level, triggers=triggers, summary=summary, answers=dict(ans))
