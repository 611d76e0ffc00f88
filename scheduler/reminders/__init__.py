"""Reminders and their delivery. APScheduler is only the clock; the database is the truth."""
