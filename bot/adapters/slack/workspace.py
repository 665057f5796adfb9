"""Which Slack workspace an id belongs to, and the stored form of Slack ids.

One deployment serves many workspaces, and a Slack id is only unique inside its workspace
(or its Enterprise Grid org), so every Slack id the coach stores — users, DMs, channels,
dedup keys, outbox targets — is scoped: ``"<workspace key>:<Slack id>"``, e.g.
``"T0123:U0456"``. The engine and the database treat it as an opaque id; only the Slack
adapter reads it, to pick that workspace's token and to call Slack with the bare id.

Workspace keys (Slack ids never contain "." or ":"):

- ``"T0123"``: a workspace;
- ``"E0123.T0456"``: a workspace of an Enterprise Grid org, installed on its own;
- ``"E0123."``: an org-wide install, whose ids are unique across the whole org.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SEPARATOR = ":"


@dataclass(frozen=True)
class Workspace:
    """A Slack installation target: a team, or a whole Enterprise Grid org."""

    team_id: str | None
    enterprise_id: str | None = None
    is_enterprise_install: bool = False

    def __post_init__(self) -> None:
        if not (self.enterprise_id if self.is_enterprise_install else self.team_id):
            raise ValueError("a Slack workspace needs a team id (or an org id for an org install)")

    @property
    def key(self) -> str:
        if self.is_enterprise_install:
            return f"{self.enterprise_id}."
        if self.enterprise_id:
            return f"{self.enterprise_id}.{self.team_id}"
        return str(self.team_id)

    @property
    def store_team_id(self) -> str | None:
        """The team id the installation store files this installation under (an org-wide
        install has none)."""
        return None if self.is_enterprise_install else self.team_id

    def scoped(self, slack_id: str) -> str:
        return f"{self.key}{SEPARATOR}{slack_id}"

    @property
    def prefix(self) -> str:
        """What every scoped id of this workspace starts with."""
        return f"{self.key}{SEPARATOR}"

    @classmethod
    def from_key(cls, key: str) -> Workspace:
        enterprise, dot, team = key.partition(".")
        if not dot:
            return cls(team_id=key)
        return cls(team_id=team or None, enterprise_id=enterprise, is_enterprise_install=not team)

    @classmethod
    def of(
        cls, team_id: Any, enterprise_id: Any = None, is_enterprise_install: Any = False
    ) -> Workspace | None:
        """The workspace Slack names in a request or an API answer; None when it names none."""
        team = team_id if isinstance(team_id, str) and team_id else None
        enterprise = enterprise_id if isinstance(enterprise_id, str) and enterprise_id else None
        org_wide = bool(is_enterprise_install) and enterprise is not None
        if org_wide:
            team = None  # one install for every workspace of the org
        try:
            return cls(team_id=team, enterprise_id=enterprise, is_enterprise_install=org_wide)
        except ValueError:
            return None


def unscope(value: str) -> tuple[Workspace | None, str]:
    """Split a stored id into its workspace and the bare Slack id. An id stored before
    workspaces were recorded has no workspace."""
    key, sep, bare = value.rpartition(SEPARATOR)
    if not sep or not key:
        return None, value
    return Workspace.from_key(key), bare


def bare(value: str) -> str:
    """The Slack id inside a stored id."""
    return unscope(value)[1]
