"""Telegram: private chats and running-club groups through python-telegram-bot."""

from bot.adapters.telegram.adapter import TelegramAdapter

__all__ = ["TelegramAdapter"]
