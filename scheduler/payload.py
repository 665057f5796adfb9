"""Moved to `bot.payload` (replies are stored in the outbox too); kept for existing imports."""

from bot.payload import decode, encode

__all__ = ["decode", "encode"]
