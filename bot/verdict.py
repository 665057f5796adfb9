"""What each process type will run with a configuration, or why it refuses to start.

Every process (`run`, `web`, `clock`, `chat`) prints its plan's one line before starting, and
refuses with exit status 78 (EX_CONFIG) and the variable to set when its plan has problems;
`hipcoach check` prints the same plans without starting anything. The README's
Configuration section has this module's decisions as a table; the rules are:

- a setting that is wrong for the whole deployment (a webhook URL without its secret, half
  of Slack's OAuth pair, a Telegram or Slack option without its token) stops every process
  type that talks to that platform, since they usually share one environment;
- a process type that would leave a configured platform unheard refuses: `web` without a
  webhook for Telegram (it never polls), `web` and `clock` with a Socket Mode token (neither
  opens a socket), Slack over HTTP without the signing secret;
- `web` with nothing to serve and `clock` with nothing to send refuse;
- `chat`, the console, ignores platform settings on purpose: nobody starts it expecting a
  bot to answer, and the line says they are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from bot.config import Settings
from bot.storage.db import describe_database

__all__ = ["EX_CONFIG", "PROCESS_TYPES", "Plan", "Problem", "Process", "plan"]

EX_CONFIG = 78  # sysexits.h: configuration error
PROCESS_TYPES = ("run", "web", "clock", "chat")
Process = Literal["run", "web", "clock", "chat"]

_TELEGRAM_OPTIONS = (
    "TELEGRAM_API_URL",
    "TELEGRAM_FILE_URL",
    "TELEGRAM_WEBHOOK_URL",
    "TELEGRAM_WEBHOOK_SECRET",
)
_SLACK_OPTIONS = ("SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SLACK_API_URL")


@dataclass(frozen=True)
class Problem:
    variable: str  # the variable to set (or unset)
    message: str

    def __str__(self) -> str:
        return f"{self.variable}: {self.message}"


@dataclass(frozen=True)
class Plan:
    """What one process type will run."""

    process: Process
    telegram: str | None = None  # "polling", "webhook", "sending only"
    slack: str | None = None  # "HTTP, one workspace", "Socket Mode", "OAuth, many workspaces", ...
    console: bool = False
    scheduler: bool = False
    database: str = ""
    http: tuple[str, int] | None = None  # where it listens, if it does
    http_routes: str = ""
    metrics: bool = True
    container: str | None = None
    host_from_env: bool = False
    notes: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.problems

    def line(self) -> str:
        """The one start-up line (no secrets: no tokens, no passwords, no webhook path)."""
        parts = []
        if self.console:
            parts.append("console chat")
        if self.telegram:
            parts.append(f"Telegram {self.telegram}")
        if self.slack:
            parts.append(f"Slack {self.slack}")
        parts.append(f"scheduler {'on' if self.scheduler else 'off'}")
        parts.append(f"database {self.database}")
        if self.http is not None:
            host, port = self.http
            why = (
                "HOST"
                if self.host_from_env
                else (f"container: {self.container}" if self.container else "no container")
            )
            shown = f"[{host}]" if ":" in host else host
            parts.append(f"HTTP {shown}:{port} ({why}) {self.http_routes}")
            parts.append(f"metrics {'on' if self.metrics else 'off (HIPCOACH_METRICS)'}")
        elif not self.console:
            parts.append("no HTTP (set PORT for /healthz and /metrics)")
        parts.extend(self.notes)
        return f"hipcoach {self.process}: " + "; ".join(parts)

    def refusal(self) -> str:
        lines = [f"hipcoach {self.process}: refusing to start:"]
        lines.extend(f"  {problem}" for problem in self.problems)
        return "\n".join(lines)


def plan(process: Process, settings: Settings) -> Plan:
    """Decide what `process` runs with `settings`; problems make it refuse to start."""
    s = settings
    problems: list[Problem] = []
    notes: list[str] = []
    if process == "chat":
        ignored = [name for name, value in _platform_values(s).items() if value]
        if ignored:
            notes.append("Telegram and Slack settings are ignored (console only)")
        return Plan(
            process="chat",
            console=True,
            scheduler=True,
            database=describe_database(s.database_url),
            notes=tuple(notes),
        )

    problems += _telegram_problems(s)
    problems += _slack_problems(s)

    telegram: str | None = None
    slack: str | None = None
    serves_platform_http = False
    if s.telegram_enabled:
        if process == "clock":
            telegram = "sending only"
        elif s.telegram_webhook_url:
            telegram = "webhook"
            serves_platform_http = True
        elif process == "run":
            telegram = "polling"
        else:
            problems.append(
                Problem(
                    "TELEGRAM_WEBHOOK_URL",
                    "hipcoach web receives Telegram updates only through a webhook: set "
                    "TELEGRAM_WEBHOOK_URL (and TELEGRAM_WEBHOOK_SECRET), or run `hipcoach run`, "
                    "which polls",
                )
            )
    if s.slack_enabled:
        workspaces = "OAuth, many workspaces" if s.slack_oauth else "one workspace"
        if s.slack_app_token:
            if process in ("web", "clock"):
                problems.append(
                    Problem(
                        "SLACK_APP_TOKEN",
                        f"hipcoach {process} never opens a Socket Mode connection, so Slack "
                        "events would go unheard: unset SLACK_APP_TOKEN (Slack then posts to "
                        "/slack/events) or run `hipcoach run` for Socket Mode",
                    )
                )
            elif s.slack_oauth:
                problems.append(
                    Problem(
                        "SLACK_APP_TOKEN",
                        "Slack OAuth (SLACK_CLIENT_ID) installs through HTTP pages "
                        "(/slack/install); unset SLACK_APP_TOKEN to serve Slack over HTTP",
                    )
                )
            else:
                slack = "Socket Mode, one workspace"
        elif process == "clock":
            slack = f"sending only, {workspaces}"
        elif not s.slack_signing_secret:
            problems.append(
                Problem(
                    "SLACK_SIGNING_SECRET",
                    "Slack over HTTP needs it to verify requests (every request would get 401)"
                    + ("; or set SLACK_APP_TOKEN for Socket Mode" if process == "run" else ""),
                )
            )
        else:
            slack = f"HTTP, {workspaces}"
            serves_platform_http = True

    if process == "web" and not (s.telegram_enabled or s.slack_enabled):
        problems.append(
            Problem(
                "TELEGRAM_BOT_TOKEN",
                "hipcoach web has nothing to serve: set TELEGRAM_BOT_TOKEN with "
                "TELEGRAM_WEBHOOK_URL and TELEGRAM_WEBHOOK_SECRET, and/or SLACK_BOT_TOKEN with "
                "SLACK_SIGNING_SECRET",
            )
        )
    if process == "clock" and not (s.telegram_enabled or s.slack_enabled):
        problems.append(
            Problem(
                "TELEGRAM_BOT_TOKEN",
                "hipcoach clock has no platform to send reminders to: set TELEGRAM_BOT_TOKEN "
                "and/or SLACK_BOT_TOKEN (or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET)",
            )
        )

    console = process == "run" and not (s.telegram_enabled or s.slack_enabled)
    http: tuple[str, int] | None = None
    routes = "/healthz /metrics" if s.metrics else "/healthz"
    if process == "web" or serves_platform_http:
        http = (s.bind_host, s.listen_port)
        served = []
        if telegram == "webhook":
            served.append("/telegram")
        if slack and slack.startswith("HTTP"):
            served.append("/slack/events")
        routes = " ".join([*served, routes])
    elif s.port is not None and not console:
        http = (s.bind_host, s.port)
    unique = {problem.variable: problem for problem in reversed(problems)}
    return Plan(
        process=process,
        telegram=telegram,
        slack=slack,
        console=console,
        scheduler=process in ("run", "clock"),
        database=describe_database(s.database_url),
        http=http,
        http_routes=routes,
        metrics=s.metrics,
        container=s.container,
        host_from_env=s.host is not None,
        notes=tuple(notes),
        problems=tuple(p for p in problems if unique[p.variable] is p),
    )


def _platform_values(s: Settings) -> dict[str, str | None]:
    return {
        "TELEGRAM_BOT_TOKEN": s.telegram_bot_token,
        "TELEGRAM_API_URL": s.telegram_api_url,
        "TELEGRAM_FILE_URL": s.telegram_file_url,
        "TELEGRAM_WEBHOOK_URL": s.telegram_webhook_url,
        "TELEGRAM_WEBHOOK_SECRET": s.telegram_webhook_secret,
        "SLACK_BOT_TOKEN": s.slack_bot_token,
        "SLACK_SIGNING_SECRET": s.slack_signing_secret,
        "SLACK_APP_TOKEN": s.slack_app_token,
        "SLACK_API_URL": s.slack_api_url,
        "SLACK_CLIENT_ID": s.slack_client_id,
        "SLACK_CLIENT_SECRET": s.slack_client_secret,
    }


def _telegram_problems(s: Settings) -> list[Problem]:
    values = _platform_values(s)
    if not s.telegram_enabled:
        given = [name for name in _TELEGRAM_OPTIONS if values[name]]
        if given:
            named = ", ".join(given)
            return [Problem("TELEGRAM_BOT_TOKEN", f"{named} is set but the token is not")]
        return []
    problems = []
    if s.telegram_webhook_url and not s.telegram_webhook_secret:
        problems.append(
            Problem(
                "TELEGRAM_WEBHOOK_SECRET",
                "TELEGRAM_WEBHOOK_URL is set: without a secret every webhook request is refused "
                "(generate one with `openssl rand -hex 32`)",
            )
        )
    if (
        s.telegram_webhook_url
        and not s.telegram_webhook_url.startswith("https://")
        and not s.telegram_api_url
    ):
        # Only a self-hosted Bot API server (TELEGRAM_API_URL) calls plain http:// webhooks.
        problems.append(
            Problem("TELEGRAM_WEBHOOK_URL", "Telegram only calls https:// webhook URLs")
        )
    return problems


def _slack_problems(s: Settings) -> list[Problem]:
    values = _platform_values(s)
    problems = []
    if bool(s.slack_client_id) != bool(s.slack_client_secret):
        missing = "SLACK_CLIENT_SECRET" if s.slack_client_id else "SLACK_CLIENT_ID"
        present = "SLACK_CLIENT_ID" if s.slack_client_id else "SLACK_CLIENT_SECRET"
        problems.append(Problem(missing, f"Slack OAuth needs both; {present} is set"))
    if not s.slack_enabled:
        given = [name for name in _SLACK_OPTIONS if values[name]]
        if given and not problems:
            problems.append(
                Problem(
                    "SLACK_BOT_TOKEN",
                    f"{', '.join(given)} is set but neither SLACK_BOT_TOKEN nor "
                    "SLACK_CLIENT_ID/SLACK_CLIENT_SECRET is",
                )
            )
        return problems
    if s.slack_oauth and not s.slack_signing_secret:
        problems.append(
            Problem(
                "SLACK_SIGNING_SECRET",
                "Slack OAuth (many workspaces) runs over HTTP and needs it to verify requests",
            )
        )
    return problems
