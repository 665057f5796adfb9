"""`export` as a person reads it: the stored rows with their meaning beside the codes.

`readable(data, content)` takes the rows of `Repository.export_user` and returns the JSON
the runner gets: every check-in with the questions as the coach asked them and the answers
as the buttons said them, the decision and its reason in words, exercise names and log
outcomes in words, screening answers with their questions, and the coach's messages as
text. What only the coach's machinery needs (the conversation in progress, the plan
position kept to re-decide a changed check-in, encoded message payloads) is left out.
`checkins_csv` is the check-ins as a table, one row a day, for a spreadsheet.
"""

from __future__ import annotations

import contextlib
import csv
import io
from typing import Any

from bot.payload import decode
from content.loader import Content

INTERNAL_PROFILE = ("before_checkin",)  # bookkeeping for a changed check-in, not about you
INTERNAL_USER = ("conversation", "version")
CSV_COLUMNS = (
    ("date", "Date"),
    ("morning_pain", "Morning pain (0-10)"),
    ("ran", "Ran"),
    ("run_minutes", "Run minutes"),
    ("run_pain", "Worst pain during the run (0-10)"),
    ("after_run", "After the run"),
    ("exercises", "Exercises"),
    ("exercise_pain", "Worst pain during the exercises (0-10)"),
    ("holds", "Pain during the holds"),
    ("decision", "Decision"),
    ("reason", "Why"),
    ("phase", "Phase"),
    ("level", "Level"),
)


def readable(data: dict[str, Any], content: Content) -> dict[str, Any]:
    user = {k: v for k, v in data["user"].items() if k not in INTERNAL_USER}
    profile = user.get("profile")
    if isinstance(profile, dict):
        user["profile"] = {k: v for k, v in profile.items() if k not in INTERNAL_PROFILE}
    return {
        "about": content.message("export_about"),
        "user": user,
        "checkins": [_checkin(row, content) for row in data["checkins"]],
        "exercise_logs": [_log(row, content) for row in data["exercise_logs"]],
        "escalations": data["escalations"],
        "screenings": [_screening(row, content) for row in data["screenings"]],
        "plan_changes": [_plan_change(row, content) for row in data["plan_changes"]],
        "warmup_schedules": data["warmup_schedules"],
        "messages": [_message(row) for row in data["outbox"]],
        # Section 6 outcome answers (weekly global rating and activity scores), and when
        # the next Sunday summary is due.
        "outcome_answers": data.get("outcome_answers", []),
        "weekly_summaries": data.get("weekly_summaries", []),
    }


def checkins_csv(data: dict[str, Any], content: Content) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([title for _, title in CSV_COLUMNS])
    for row in data["checkins"]:
        cells = _cells(row, content)
        writer.writerow([cells.get(key, "") for key, _ in CSV_COLUMNS])
    return out.getvalue().encode("utf-8")


# --- check-ins --------------------------------------------------------------------------------


def _t(content: Content, key: str, fallback: str = "", **kw: Any) -> str:
    try:
        return content.message(key, **kw)
    except KeyError:
        return fallback


def _cells(row: dict[str, Any], content: Content) -> dict[str, str]:
    """Each answer of a day in words, by CSV column (missing: not asked that day)."""
    cells: dict[str, str] = {"date": str(row.get("local_date") or "")}
    if row.get("pain_now") is not None:
        cells["morning_pain"] = str(row["pain_now"])
    ran = row.get("ran")
    if ran == "no":
        cells["ran"] = _t(content, "opt_ran_no", "No run")
    elif ran is not None:
        cells["ran"] = _t(content, "opt_gate_yes", "Yes")
        if row.get("run_minutes") is not None:
            cells["run_minutes"] = str(row["run_minutes"])
        if row.get("pain_during") is not None:
            cells["run_pain"] = str(row["pain_during"])
        if row.get("run_sharp"):
            cells["after_run"] = _t(content, "opt_after_sharp")
        elif row.get("swelling"):
            cells["after_run"] = _t(content, "opt_after_swollen")
        elif row.get("swelling") is not None:
            cells["after_run"] = _t(content, "opt_after_fine")
    exercises = row.get("exercises")
    if exercises in ("none",):
        cells["exercises"] = _t(content, "opt_ex_skipped")
    elif exercises is not None:
        cells["exercises"] = _t(content, "log_outcome_done")
        if row.get("exercise_pain") is not None:
            cells["exercise_pain"] = str(row["exercise_pain"])
    worse = row.get("isometric_worse")
    if worse is not None:
        cells["holds"] = _t(content, "opt_holds_worse" if worse else "opt_holds_fine")
    decision = row.get("decision")
    if decision:
        cells["decision"] = _t(content, f"decision_{decision}", decision)
    reason = row.get("reason")
    if reason:
        cells["reason"] = _t(content, f"reason_{reason}", reason)
    for key in ("phase", "level"):
        if row.get(key) is not None:
            cells[key] = str(row[key])
    return cells


# Answer column(s) -> the question that asked for them, and the CSV cell holding the answer.
_QUESTIONS = (
    ("morning_pain", "morning_pain_question", "/10"),
    ("ran", "ran_question", ""),
    ("run_minutes", "ran_question", " min"),
    ("run_pain", "run_pain_question", "/10"),
    ("after_run", "after_run_question", ""),
    ("exercises", "exercise_pain_question", ""),
    ("exercise_pain", "exercise_pain_question", "/10"),
    ("holds", "holds_question", ""),
)


def _checkin(row: dict[str, Any], content: Content) -> dict[str, Any]:
    cells = _cells(row, content)
    answers = [
        {"question": _t(content, question), "answer": cells[key] + unit}
        for key, question, unit in _QUESTIONS
        if key in cells
    ]
    readable_row = dict(row)
    readable_row["answers"] = answers
    if "decision" in cells:
        readable_row["decision_text"] = cells["decision"]
    if "reason" in cells:
        readable_row["reason_text"] = cells["reason"]
    return readable_row


# --- the other rows ---------------------------------------------------------------------------


def _log(row: dict[str, Any], content: Content) -> dict[str, Any]:
    exercise = content.exercises.get(str(row.get("exercise_id")))
    return {
        **row,
        "exercise": exercise.name if exercise else row.get("exercise_id"),
        "outcome_text": _t(content, f"log_outcome_{row.get('outcome')}", str(row.get("outcome"))),
    }


_ANSWER_WORDS = {"yes": "opt_yes", "no": "opt_no", "unsure": "opt_unsure"}


def _screening(row: dict[str, Any], content: Content) -> dict[str, Any]:
    answers = row.get("answers") or {}
    listed = []
    for item_id, value in answers.items():
        try:
            question = content.screen_item(item_id).question
        except KeyError:
            question = item_id
        word = _ANSWER_WORDS.get(str(value))
        listed.append(
            {
                "item": item_id,
                "question": question,
                "answer": _t(content, word, str(value)) if word else str(value),
            }
        )
    return {**row, "answers_text": listed}


def _plan_change(row: dict[str, Any], content: Content) -> dict[str, Any]:
    def name(phase: Any) -> str | None:
        found = content.phases.get(phase) if isinstance(phase, int) else None
        return found.name if found else None

    return {
        **row,
        "from_phase_name": name(row.get("from_phase")),
        "to_phase_name": name(row.get("to_phase")),
        "decision_text": _t(content, f"decision_{row.get('decision')}", str(row.get("decision"))),
        "reason_text": _t(content, f"reason_{row.get('reason')}", str(row.get("reason"))),
    }


def _message(row: dict[str, Any]) -> dict[str, Any]:
    """A message the coach queued for the runner, as its text (not its wire payload)."""
    out = {k: v for k, v in row.items() if k not in ("payload", "claim_token")}
    payload = row.get("payload")
    out["text"] = None
    if isinstance(payload, dict):
        # An odd old payload: the row without its text, never a failed export.
        with contextlib.suppress(ValueError, TypeError, KeyError):
            out["text"] = decode(str(row.get("chat_id") or ""), payload).text
    return out
