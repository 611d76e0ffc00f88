"""The privacy notice participants agree to before registering (its text: templates/privacy.html).

Raise :data:`NOTICE_VERSION` whenever the notice's meaning changes: registrations record the
version agreed to, and clients must send the current one.
"""
from __future__ import annotations

#: The version of the notice in force; registrations record it with the time of consent.
NOTICE_VERSION = "2026-12"
