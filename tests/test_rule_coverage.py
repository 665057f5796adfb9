"""Every clinical rule is implemented (or listed as not applicable, with a reason), carried
where the registry says, proved by a test named after it, and no flow hides a threshold.
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest
import yaml

from bot.engine.flows import interpreter
from bot.engine.rules import NOT_APPLICABLE, RULES
from content.loader import DATA_DIR, load_content
from tests.test_content import RUN, _runs, _words
from tests.test_content import reference_runs as reference_runs  # a fixture, used by name

ROOT = Path(__file__).resolve().parents[1]
CLINICAL_RULES = ROOT.parent / "shared" / "reference" / "clinical-rules.md"
# The rules of sections 0-2, 3e and 4 (and 5b's triage logic) that the coach must follow.
REQUIRED = re.compile(r"^\|\s*((?:G|R|P|RR|RP|TL)\d+)\s*\|", re.MULTILINE)
ID_PREFIXES = ("G", "R", "P", "RR", "RP", "TL")


def required_ids() -> list[str]:
    if not CLINICAL_RULES.is_file():
        pytest.skip(f"the clinical rules are not at {CLINICAL_RULES} (CI has them)")
    return sorted(set(REQUIRED.findall(CLINICAL_RULES.read_text(encoding="utf-8"))))


def _expected_ids() -> list[str]:
    """The ids a test must exist for, even without the reference file: the families and
    their ranges the issue names (G1-G5, R1-R21, P1-P11, RR1-RR6, RP1-RP8, TL1-TL6)."""
    ranges = {"G": 5, "R": 21, "P": 11, "RR": 6, "RP": 8, "TL": 6}
    return [f"{prefix}{n}" for prefix, top in ranges.items() for n in range(1, top + 1)]


def test_every_rule_of_the_clinical_rules_is_implemented_or_explained() -> None:
    ids = required_ids()
    assert len(ids) >= 57, ids  # the file's tables were read
    missing = [i for i in ids if i not in RULES and i not in NOT_APPLICABLE]
    assert not missing, f"rules neither implemented nor listed as not applicable: {missing}"
    both = sorted(set(RULES) & set(NOT_APPLICABLE))
    assert not both, f"implemented and 'not applicable' at once: {both}"
    assert all(len(reason) > 40 for reason in NOT_APPLICABLE.values())


def test_the_registry_names_only_rules_that_exist() -> None:
    ids = set(required_ids())
    unknown = [i for i in RULES if i.startswith(ID_PREFIXES) and i[0] != "3" and i not in ids]
    assert not unknown, f"registered ids not in the clinical rules: {unknown}"


def test_the_expected_families_are_all_registered() -> None:
    missing = [i for i in _expected_ids() if i not in RULES and i not in NOT_APPLICABLE]
    assert not missing, missing


def _test_names() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "tests").glob("test_*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names.add(node.name)
    return names


@pytest.mark.parametrize("rule_id", _expected_ids())
def test_every_rule_has_a_test_named_after_it(rule_id: str) -> None:
    names = _test_names()
    pattern = re.compile(rf"(^test_{rule_id}(_|$))|(_{rule_id}_)")
    assert any(pattern.search(n) for n in names), f"no test named after {rule_id}"


def test_every_rule_implementation_exists() -> None:
    for rule in RULES.values():
        for where in rule.where:
            if where.endswith(".yaml"):
                continue
            module, _, name = where.rpartition(".")
            mod = __import__(module, fromlist=[name])
            assert hasattr(mod, name), where


def test_the_shipped_flows_carry_every_rule_the_registry_says_they_do() -> None:
    interpreter.check_content(load_content())


def test_a_flow_that_drops_a_rule_tag_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    path = data / "flows" / "start.yaml"
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    spec["states"]["r21"].pop("rule")
    for option in spec["states"]["r21"]["options"]:
        if "flag" in option:
            option["flag"]["rule"] = "G1"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    with pytest.raises(interpreter.FlowError, match="R21"):
        interpreter.check_content(load_content(data))


def test_a_flow_naming_an_unknown_condition_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    path = data / "flows" / "checkin.yaml"
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    spec["states"]["exercise_pain"]["when"] = "the_moon_is_full"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    with pytest.raises(interpreter.FlowError, match="the_moon_is_full"):
        interpreter.check_content(load_content(data))


# --- no bare clinical number in the flows -------------------------------------------------------

ALLOWED_LITERALS = {0, 1, -1}
# Warm-up schedules are calendar arithmetic (days of the week, minutes before a run), not
# coaching; no clinical threshold lives there.
NOT_CLINICAL = {"team.py"}


def _bare_numbers(path: Path) -> list[tuple[int, object]]:
    """Numbers in a module other than 0 and 1, outside module-level NAMED_CONSTANTS and
    button layouts (`columns=2`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    named: set[int] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if all(isinstance(t, ast.Name) and t.id.isupper() for t in targets):
                named |= {id(n) for n in ast.walk(node)}
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "columns":
            named |= {id(n) for n in ast.walk(node.value)}
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, int | float)
            and not isinstance(node.value, bool)
            and node.value not in ALLOWED_LITERALS
            and id(node) not in named
        ):
            found.append((node.lineno, node.value))
    return found


FLOW_MODULES = sorted(
    p for p in (ROOT / "bot" / "engine" / "flows").glob("*.py") if p.name not in NOT_CLINICAL
)


@pytest.mark.parametrize("path", FLOW_MODULES, ids=lambda p: p.name)
def test_no_flow_module_has_a_bare_number(path: Path) -> None:
    assert _bare_numbers(path) == []


def test_a_bare_threshold_in_a_flow_is_caught(tmp_path: Path) -> None:
    module = tmp_path / "flow.py"
    module.write_text("LIMIT = 7\n\ndef f(p):\n    return p >= 7 or p > LIMIT\n")
    assert _bare_numbers(module) == [(4, 7)]


# --- our own words ------------------------------------------------------------------------------


def test_rule_summaries_and_the_clinical_basis_are_in_our_own_words(
    reference_runs: set[tuple[str, ...]],
) -> None:
    texts = [rule.summary for rule in RULES.values()]
    texts += list(NOT_APPLICABLE.values())
    texts.append((ROOT / "docs" / "clinical-basis.md").read_text(encoding="utf-8"))
    copied = [
        " ".join(run) for text in texts for run in sorted(_runs(_words(text)) & reference_runs)
    ]
    assert not copied, f"{RUN}+ words copied from the reference: {copied[:3]}"


def test_the_clinical_basis_lists_every_rule() -> None:
    basis = (ROOT / "docs" / "clinical-basis.md").read_text(encoding="utf-8")
    missing = [i for i in [*RULES, *NOT_APPLICABLE] if not re.search(rf"\b{re.escape(i)}\b", basis)]
    assert not missing, missing
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/clinical-basis.md" in readme
    assert "../shared" not in readme and "shared/reference" not in readme
