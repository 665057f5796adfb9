"""Stored Slack ids name their workspace, including Enterprise Grid orgs and org-wide
installs, and read back to the workspace whose token the adapter must use."""

from __future__ import annotations

import pytest

from bot.adapters.slack.workspace import Workspace, bare, unscope


@pytest.mark.parametrize(
    ("workspace", "key", "store_team"),
    [
        (Workspace("T0123"), "T0123", "T0123"),
        (Workspace("T0456", enterprise_id="E0789"), "E0789.T0456", "T0456"),
        (Workspace("T0456", "E0789", is_enterprise_install=True), "E0789.", None),
    ],
    ids=["workspace", "grid workspace", "org-wide install"],
)
def test_a_scoped_id_reads_back_to_its_workspace(
    workspace: Workspace, key: str, store_team: str | None
) -> None:
    assert workspace.key == key
    assert workspace.store_team_id == store_team
    scoped = workspace.scoped("U0SAME")
    assert scoped == f"{key}:U0SAME"
    back, slack_id = unscope(scoped)
    assert back is not None and slack_id == "U0SAME" and bare(scoped) == "U0SAME"
    assert back.key == key and back.store_team_id == store_team
    assert back.is_enterprise_install == workspace.is_enterprise_install


def test_the_same_user_id_in_two_workspaces_is_two_ids() -> None:
    assert Workspace("T1").scoped("U1") != Workspace("T2").scoped("U1")
    # An org-wide install sees one person across the org's workspaces.
    org = Workspace.of("T1", "E1", True)
    assert org is not None and org == Workspace.of("T2", "E1", True)


def test_ids_stored_before_workspaces_have_none() -> None:
    assert unscope("U0OLD") == (None, "U0OLD")
    assert bare("D0OLD") == "D0OLD"


@pytest.mark.parametrize(
    "named", [(None, None, False), ("", None, False), (None, None, True), (["T1"], None, False)]
)
def test_a_request_naming_no_workspace_has_none(named: tuple[object, object, bool]) -> None:
    assert Workspace.of(*named) is None
