"""The flow specs in content/data/flows are checked at load: a broken spec fails with a
message naming the file and the state, never in front of a runner."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from content.loader import DATA_DIR, ContentError, load_content


def broken(tmp_path: Path, flow: str, change: Callable[[dict[str, Any]], None]) -> Path:
    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    path = data / "flows" / f"{flow}.yaml"
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(spec)
    path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    return data


def test_the_shipped_flows_load() -> None:
    flows = load_content().flows
    assert set(flows) == {"start", "checkin", "clearance", "review", "symptoms"}


def test_a_step_to_an_unknown_state_fails(tmp_path: Path) -> None:
    def change(spec: dict[str, Any]) -> None:
        spec["states"]["ran"]["then"] = [{"go": "nowhere"}]

    with pytest.raises(ContentError, match=r"checkin.yaml: states.ran: .*unknown state 'nowhere'"):
        load_content(broken(tmp_path, "checkin", change))


def test_a_loop_fails(tmp_path: Path) -> None:
    def change(spec: dict[str, Any]) -> None:
        spec["states"]["run_pain"]["then"] = [{"go": "ran"}]

    with pytest.raises(ContentError, match="loops back"):
        load_content(broken(tmp_path, "checkin", change))


def test_a_decision_reached_without_a_safety_screen_fails(tmp_path: Path) -> None:
    def change(spec: dict[str, Any]) -> None:
        spec["states"]["exercise_pain"]["then"][-1] = {"end": "decided"}

    with pytest.raises(ContentError, match="without a safety screen"):
        load_content(broken(tmp_path, "checkin", change))


def test_an_escalating_answer_that_goes_on_asking_fails(tmp_path: Path) -> None:
    def change(spec: dict[str, Any]) -> None:
        option = spec["states"]["minor_walk"]["options"][0]
        option.pop("end")
        option["go"] = "tz"

    with pytest.raises(ContentError, match="escalating flag ends the flow"):
        load_content(broken(tmp_path, "start", change))


def test_a_missing_message_key_fails(tmp_path: Path) -> None:
    def change(spec: dict[str, Any]) -> None:
        spec["states"]["who"]["ask"] = "who_asks_this"

    with pytest.raises(ContentError, match="no message 'who_asks_this'"):
        load_content(broken(tmp_path, "start", change))


def test_a_conditional_question_needs_somewhere_to_go_otherwise(tmp_path: Path) -> None:
    def change(spec: dict[str, Any]) -> None:
        spec["states"]["exercise_pain"].pop("otherwise")

    with pytest.raises(ContentError, match="'when' and 'otherwise' come together"):
        load_content(broken(tmp_path, "checkin", change))


def test_an_unreachable_question_fails(tmp_path: Path) -> None:
    def change(spec: dict[str, Any]) -> None:
        spec["states"]["lonely"] = {
            "kind": "choice",
            "ask": "who_question",
            "options": [
                {"value": "a", "label": "opt_yes", "end": "decided"},
                {"value": "b", "label": "opt_no", "end": "decided"},
            ],
        }

    with pytest.raises(ContentError, match="never asked: \\['lonely'\\]"):
        load_content(broken(tmp_path, "checkin", change))


def test_an_unknown_rule_id_pattern_fails(tmp_path: Path) -> None:
    def change(spec: dict[str, Any]) -> None:
        spec["states"]["r21"]["rule"] = "Z9"

    with pytest.raises(ContentError, match="r21"):
        load_content(broken(tmp_path, "start", change))
