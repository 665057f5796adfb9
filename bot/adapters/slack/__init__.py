"""Slack: slack-bolt transport for the coach (HTTP events, Socket Mode, outbox sender)."""

from bot.adapters.slack.adapter import SlackAdapter

__all__ = ["SlackAdapter"]
