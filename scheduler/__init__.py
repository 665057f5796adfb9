"""Scheduling: the due-work tick, the outbox dispatcher and cleanup (see `core`)."""

from scheduler.core import Scheduler, SchedulerConfig

__all__ = ["Scheduler", "SchedulerConfig"]
