"""Alerts for an organization's managers: things that need a person to look."""
