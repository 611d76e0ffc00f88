"""``flask`` commands: demo data, users, tokens, and serving."""
from __future__ import annotations

from zoneinfo import ZoneInfo

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select

from scheduler.events.kinds import Kind
from scheduler.extensions import db

user_cli = AppGroup("user", help="Manage users.")
token_cli = AppGroup("token", help="Manage API tokens.")


@click.command("seed-demo")
@click.option("--if-empty", is_flag=True, help="Do nothing when organizations exist already.")
def seed_demo_command(if_empty: bool) -> None:
    """Load the organizations, the targets and a demo plan of the current year."""
    from scheduler.demo import seed_demo
    from scheduler.orgs.models import Organization
    from scheduler.util.time import now

    if if_empty and db.session.scalar(select(Organization.id).limit(1)) is not None:
        click.echo("Data present; demo plan not loaded.")
        return
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    admin_email = current_app.config["ADMIN_EMAIL"]
    password = seed_demo(now().astimezone(tz).date(), tz, admin_email)
    db.session.commit()
    click.echo("Demo plan loaded.")
    if password:
        show_password("Administrator", admin_email, password)


@user_cli.command("create")
@click.argument("email")
@click.option("--org", "org_slug", help="Organization slug for the membership.")
@click.option("--role", type=click.Choice(["manager", "editor", "viewer"]), default="editor", show_default=True)
@click.option("--admin", is_flag=True, help="Administrator of every organization.")
@click.option("--password", help="Password (generated and printed when omitted).")
@click.option("--name", default="", help="Display name.")
def create_user_command(email: str, org_slug: str | None, role: str, admin: bool, password: str | None, name: str) -> None:
    """Create a user with a role in one organization (or an administrator)."""
    from scheduler.auth.models import Role
    from scheduler.auth.operations import create_user, set_membership
    from scheduler.orgs.queries import get_org_by_slug

    if not org_slug and not admin:
        raise click.UsageError("give --org SLUG (with --role), or --admin")
    org = get_org_by_slug(org_slug) if org_slug else None
    if org_slug and org is None:
        raise click.BadParameter(f"no organization {org_slug!r}", param_hint="--org")
    try:
        user, clear = create_user(email, password, name=name, is_admin=admin)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if org is not None:
        set_membership(user, org, Role(role))
    db.session.commit()
    click.echo(f"Created {user.email}" + (f" ({role} of {org.slug})" if org else "") + (" [admin]" if admin else ""))
    if not password:
        show_password("User", user.email, clear)


#: The smallest password ``flask user password`` takes when typed.
MIN_PASSWORD_LENGTH = 10


def _typed_password(value: str) -> str:
    if len(value) < MIN_PASSWORD_LENGTH:
        raise click.UsageError(f"at least {MIN_PASSWORD_LENGTH} characters, please")
    return value


@user_cli.command("password")
@click.argument("email")
@click.option("--generate", is_flag=True, help="Generate a strong one-time password and print it (instead of asking).")
def password_user_command(email: str, generate: bool) -> None:
    """Set a new password for the user EMAIL (asked twice, hidden) and end every sign-in session they have."""
    from scheduler.auth.operations import get_user_by_email, new_password, set_password

    user = get_user_by_email(email)
    if user is None:
        raise click.ClickException(f"no user {email}")
    if generate:
        password = new_password()
    else:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True, value_proc=_typed_password)
    ended = set_password(user, password, generated=generate, via="flask user password")
    db.session.commit()
    click.echo(f"Password of {user.email} changed; {ended} sign-in session{'s' * (ended != 1)} ended."
               + ("" if user.active else " (The user is deactivated: the password opens nothing.)"))
    if generate:
        show_password("User", user.email, password)


def show_password(label: str, email: str, password: str) -> None:
    """Print a one-time password on stdout, framed so it stands out from the lines around it.
    Only here: never logged, never stored in clear."""
    rule = "=" * 72
    click.echo("\n".join([
        "", rule, f"  {label}: {email}", f"  password: {password}",
        "  Shown once: keep it. (A new one: flask user password EMAIL --generate)", rule, "",
    ]))


@token_cli.command("create")
@click.argument("email")
@click.option("--name", default="cli", help="What the token is for.")
def create_token_command(email: str, name: str) -> None:
    """Print a new API token for the user EMAIL (shown once)."""
    from scheduler.auth.operations import create_token, get_user_by_email

    user = get_user_by_email(email)
    if user is None:
        raise click.ClickException(f"no user {email}")
    _, clear = create_token(user, name)
    db.session.commit()
    click.echo(clear)


@token_cli.command("revoke")
@click.argument("prefix")
def revoke_token_command(prefix: str) -> None:
    """Revoke the token whose listing prefix (its first 12 characters) is PREFIX."""
    from scheduler.auth.models import ApiToken
    from scheduler.auth.operations import revoke_token

    token = db.session.scalar(select(ApiToken).where(ApiToken.prefix == prefix[:12]))
    if token is None:
        raise click.ClickException(f"no token {prefix}")
    revoke_token(token)
    db.session.commit()
    click.echo(f"Revoked {token.prefix}…")


@token_cli.command("list")
@click.argument("email")
def list_tokens_command(email: str) -> None:
    """List the user's tokens by prefix."""
    from scheduler.auth.models import ApiToken
    from scheduler.auth.operations import get_user_by_email

    user = get_user_by_email(email)
    if user is None:
        raise click.ClickException(f"no user {email}")
    for token in db.session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)):
        state = f"revoked {token.revoked_at:%Y-%m-%d}" if token.revoked_at else "active"
        click.echo(f"{token.prefix}…  {token.name}  created {token.created_at:%Y-%m-%d}  {state}")


@click.command("import-ics")
@click.argument("source", metavar="FILE_OR_URL")
@click.option("--org", "org_slug", required=True, help="Slug of the organization the events belong to.")
@click.option(
    "--kind", type=click.Choice([k.value for k in Kind]), default=Kind.SCIENCE_CARNIVAL.value, show_default=True,
    help="Kind of the events whose CATEGORIES name none of ours.",
)
@click.option("--draft", is_flag=True, help="Import new events as drafts instead of publishing them.")
@click.option("--dry-run", is_flag=True, help="Only check: report what importing would do, save nothing.")
@click.option("--atomic", is_flag=True, help="All or nothing: import no event if any one cannot be imported.")
def import_ics_command(source: str, org_slug: str, kind: str, draft: bool, dry_run: bool, atomic: bool) -> None:
    """Import the events of an iCalendar FILE_OR_URL; importing again updates them (by UID). Events that cannot be
    imported are listed with their line and why; the others are imported, a batch at a time."""
    from scheduler.feeds.import_jobs import BATCH
    from scheduler.feeds.importer import ImportRejected, load_source, prepare_import
    from scheduler.orgs.queries import get_org_by_slug

    org = get_org_by_slug(org_slug)
    if org is None:
        raise click.BadParameter(f"no organization {org_slug!r}", param_hint="--org")
    db.session.commit()  # nothing held while a URL is fetched
    try:
        prepared = prepare_import(load_source(source), org=org, source=source, kind=kind, draft=draft, atomic=atomic)
        if dry_run:
            summary = prepared.checked()
            click.echo(f"Dry run, nothing saved. Importing into {org.slug} would create {summary.created}, "
                       f"update {summary.updated}, leave {summary.unchanged} unchanged.")
        else:
            steps = len(prepared.plan.steps)
            with click.progressbar(length=steps, label=f"Importing {steps} events", show_pos=True) as bar:

                def step(_step: object) -> None:
                    bar.update(1)
                    if not atomic and bar.pos % BATCH == 0:
                        db.session.commit()  # a batch at a time: the database is not locked for the whole import

                summary = prepared.apply(on_step=step, atomic=atomic)
            db.session.commit()
            click.echo(f"Imported into {org.slug}: {summary.created} created, {summary.updated} updated, "
                       f"{summary.unchanged} unchanged.")
    except ImportRejected as exc:
        db.session.rollback()
        raise click.ClickException("\n".join([exc.message, *(f"  - {line}" for line in exc.lines())])) from None
    if summary.problems:
        click.echo(f"Not imported ({len(summary.problems)}):")
        click.echo("\n".join(f"  - {problem}" for problem in summary.problems))
    if summary.notes:
        click.echo("Notes:")
        click.echo("\n".join(f"  - {note}" for note in summary.notes))


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
def serve_command(host: str, port: int) -> None:
    """Serve the application, with the scheduler in-process unless SCHEDULER_MODE=off."""
    from werkzeug.serving import run_simple

    from scheduler import logs
    from scheduler.reminders import engine

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    logs.configure(app.config["LOG_LEVEL"])
    if app.config["SCHEDULER_MODE"] == "embedded":
        engine.start(app, senders=app.config["SENDER_THREADS"])
    click.echo(f"Serving on http://{host}:{port}  (scheduler: {app.config['SCHEDULER_MODE']})")
    try:
        run_simple(host, port, app, threaded=True, use_reloader=False)
    finally:
        engine.stop()


def _log_to_stderr() -> None:
    from scheduler import logs

    logs.configure(current_app.config["LOG_LEVEL"], with_pid=True)


scheduler_cli = AppGroup("scheduler", help="The reminder scheduler (the clock).")
worker_cli = AppGroup("worker", help="Sender workers (the outbox).")


@scheduler_cli.command("run")
def scheduler_run_command() -> None:
    """Run the scheduler: one is active (PostgreSQL advisory lock), any others wait as standbys."""
    import threading

    from scheduler.reminders.processes import on_stop_signals, run_scheduler

    _log_to_stderr()
    stop = threading.Event()
    on_stop_signals(stop.set)
    raise SystemExit(run_scheduler(current_app._get_current_object(), stop))


@worker_cli.command("run")
@click.option("--concurrency", default=8, show_default=True, type=click.IntRange(1, 256), help="Sender threads.")
def worker_run_command(concurrency: int) -> None:
    """Run a sender worker: claims due deliveries (FOR UPDATE SKIP LOCKED) and sends them."""
    import threading

    from scheduler.reminders.processes import on_stop_signals, run_worker

    _log_to_stderr()
    stop = threading.Event()
    on_stop_signals(stop.set)
    raise SystemExit(run_worker(current_app._get_current_object(), concurrency, stop))


deliveries_cli = AppGroup("deliveries", help="The delivery log.")


@deliveries_cli.command("purge")
@click.option("--days", type=click.IntRange(0), default=None,
              help="Keep finished deliveries this many days (default: DELIVERY_RETENTION_DAYS; 0 keeps all).")
def purge_deliveries_command(days: int | None) -> None:
    """Delete finished deliveries past keeping, their unused messages and old daily text counts."""
    from scheduler.reminders.retention import purge

    purged = purge(days=days)
    click.echo(f"Deleted {purged.deliveries} deliveries, {purged.messages} messages, {purged.sms_counts} daily text counts.")


privacy_cli = AppGroup("privacy", help="Participants' personal data.")


@privacy_cli.command("purge")
@click.option("--days", type=click.IntRange(0), default=None,
              help="Keep registrations this many days after their event (default: REGISTRATION_RETENTION_DAYS; 0 keeps all).")
@click.option("--dry-run", is_flag=True, help="Count what would go; change nothing.")
def purge_privacy_command(days: int | None, dry_run: bool) -> None:
    """Anonymize old registrations; delete orphan calendars, spent codes and stale text choices."""
    from scheduler.privacy.retention import purge_personal_data

    purged = purge_personal_data(days=days, dry_run=dry_run)
    deleted = (f"{purged.calendars} personal calendars, {purged.verifications} phone verifications, "
               f"{purged.sms_choices} text choices.")
    if dry_run:
        click.echo(f"Dry run: would anonymize {purged.registrations} registrations; would delete {deleted}")
    else:
        click.echo(f"Anonymized {purged.registrations} registrations; deleted {deleted}")


secrets_cli = AppGroup("secrets", help="Secrets sealed in the database.")


@secrets_cli.command("reseal")
def reseal_secrets_command() -> None:
    """Seal the webhook and robot secrets again with the first of SECRETS_KEYS (key rotation)."""
    from scheduler.channels.operations import reseal_secrets

    count = reseal_secrets()
    db.session.commit()
    click.echo(f"Sealed the secrets of {count} endpoints with the first key.")


def init_app(app: Flask) -> None:
    """Register the commands on ``app``."""
    for command in (seed_demo_command, serve_command, import_ics_command, user_cli, token_cli, scheduler_cli, worker_cli,
                    deliveries_cli, secrets_cli, privacy_cli):
        app.cli.add_command(command)
