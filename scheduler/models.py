"""Imports every domain's models so that metadata (and Alembic) sees all tables."""
from scheduler.auth.models import ApiToken, LoginSession, Membership, User  # noqa: F401
from scheduler.events.models import Event, EventOutcome, FeedRemoval  # noqa: F401
from scheduler.orgs.models import Organization  # noqa: F401
from scheduler.registrations.models import Registration  # noqa: F401
from scheduler.targets.models import Target  # noqa: F401
from scheduler.feeds.models import FeedVersion, ImportJob, PersonalCalendar  # noqa: F401
from scheduler.reminders.models import Reminder  # noqa: F401
from scheduler.channels.models import WebhookEndpoint  # noqa: F401
from scheduler.reminders.models import Delivery, OutboxMessage  # noqa: F401
from scheduler.alerts.models import Alert  # noqa: F401
from scheduler.channels.sms.models import SmsChoice, SmsDailyCount  # noqa: F401
from scheduler.privacy.models import PhoneVerification  # noqa: F401
from scheduler.audit.models import AuditEntry  # noqa: F401
