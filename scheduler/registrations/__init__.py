"""Registrations: seats, the waitlist, and participants' private tokens."""
