"""The organizers' webhook and group robot endpoints, with their health.

Routes (on the ``pages`` blueprint, login required; thin: :mod:`scheduler.channels.operations`
does the work, with the permissions of ``/api/v1/webhooks``: members of an organization, or of one
above it, see its endpoints; editors and managers change them; anything else is a 404):

* ``GET /organizer/endpoints``: the endpoints with their health, and the latest alerts.
* ``GET|POST /organizer/endpoints/new``: create one in an organization the user is an editor of.
  The fields are checked by the API's schema, then by the operation (an address that is not
  public is refused next to the field, 422). A webhook's signing secret is shown on the answer to
  the POST itself, once: never in a URL, a (flash) cookie or a log, and not stored by the browser
  (``Cache-Control: no-store``). A robot's key (in its URL) and signing secret are never shown
  again: pages show :func:`display_url`.
* ``GET /organizer/endpoints/<id>``: the endpoint, its health and its 20 latest deliveries; for
  editors the forms below. ``POST`` the same address: change the description, filters, alerts
  (and a DingTalk or Feishu robot's signing secret).
* ``POST /organizer/endpoints/<id>/enable`` and ``/disable`` (enabling clears the failures),
  ``/rotate`` (a webhook's new secret, shown once; the previous one signs too for 24 hours),
  ``/test`` (queues a ping), ``GET|POST /organizer/endpoints/<id>/delete`` (asks first).
"""
from __future__ import annotations

import re
from typing import Any

from flask import abort, flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext
from flask_login import login_required
from pydantic import ValidationError
from sqlalchemy import select
from werkzeug.wrappers import Response

from scheduler.alerts.queries import alerts_page
from scheduler.api.errors import Conflict, Invalid, from_validation_error
from scheduler.auth.models import Role, User
from scheduler.auth.permissions import can, readable_org_ids
from scheduler.channels import operations
from scheduler.channels.models import EndpointKind, WebhookEndpoint, display_url
from scheduler.channels.queries import visible_endpoint, visible_endpoints
from scheduler.channels.schemas import DeliveryQuery, MessageType, WebhookCreate, WebhookUpdate
from scheduler.events.kinds import KINDS, Kind
from scheduler.extensions import db
from scheduler.feeds.import_views import editable_orgs
from scheduler.i18n import pick
from scheduler.orgs.models import Organization
from scheduler.orgs.queries import get_org_by_slug, org_ids_of
from scheduler.pages.organizer_deliveries import (
    EditorCheck, channel_name, current_user_object, log_rows, moment, type_name,
)
from scheduler.pages.views import bp
from scheduler.reminders.queries import delivery_log

#: How many of an endpoint's deliveries its page shows, and how many alerts the list shows.
RECENT_DELIVERIES = 20
RECENT_ALERTS = 10
#: Kinds of endpoint that take a signing secret typed in (DingTalk's and Feishu's "加签").
SIGNED_ROBOTS = (EndpointKind.DINGTALK.value, EndpointKind.FEISHU.value)

#: What each refused field means, in the page's language.
FIELD_MESSAGES = {
    "org": lazy_gettext("Choose an organization."),
    "kind": lazy_gettext("Choose what is at the address."),
    "url": lazy_gettext("Give the endpoint's address: an http:// or https:// URL."),
    "secret": lazy_gettext("Give the robot's signing secret as shown by the chat app (at most 200 characters)."),
    "description": lazy_gettext("Give a description of at most 200 characters, without control characters."),
    "kinds": lazy_gettext("Choose among the kinds shown."),
    "types": lazy_gettext("Choose among the messages shown."),
}
#: The reasons an endpoint was disabled that the application writes, in the page's language.
DISABLED_REASONS = {
    "Disabled by its owner.": lazy_gettext("Disabled by its owner."),
    "The endpoint answered 410 Gone.": lazy_gettext("The endpoint answered 410 Gone: the receiver says it no longer exists."),
    "Unsubscribed by the link in its messages.": lazy_gettext("Unsubscribed by the link in its messages."),
}
_FAILED_FOR = re.compile(r"Every delivery failed for (\d+) days\.")
#: Kinds of alert.
ALERT_KINDS = {
    "webhook.disabled": lazy_gettext("Endpoint disabled"),
    "delivery.dead": lazy_gettext("Deliveries failed"),
    "target.behind": lazy_gettext("Behind a target"),
}


# --- presenting -----------------------------------------------------------------------------------

def disabled_reason(reason: str | None) -> str:
    """Why an endpoint was disabled, in the page's language when the application wrote the reason."""
    if not reason:
        return ""
    if reason in DISABLED_REASONS:
        return str(DISABLED_REASONS[reason])
    failed = _FAILED_FOR.fullmatch(reason)
    if failed:
        return gettext("Every delivery failed for %(days)s days.", days=failed[1])
    return reason


def _kind_name(kind: str) -> str:
    try:
        info = KINDS[Kind(kind)]
    except ValueError:
        return kind
    return pick(info.name_zh, info.name_en)


def present_endpoint(row: WebhookEndpoint, orgs: dict[int, Organization]) -> dict[str, Any]:
    """What the pages show of an endpoint: never its secret, and a robot's URL without its key."""
    owner = orgs.get(row.org_id)
    return {
        "id": row.id, "kind": row.kind, "kind_name": channel_name(row.kind), "url": display_url(row.kind, row.url),
        "description": row.description, "org": pick(owner.name_zh, owner.name_en) if owner else "",
        "kinds": [_kind_name(kind) for kind in row.kinds or []], "types": [type_name(t) for t in row.types or []],
        "orgs": [pick(orgs[i].name_zh, orgs[i].name_en) for i in row.org_ids or [] if i in orgs],
        "alerts": row.alerts, "enabled": row.enabled, "disabled_reason": disabled_reason(row.disabled_reason),
        "disabled_at": moment(row.disabled_at), "last_success": moment(row.last_success_at),
        "last_failure": moment(row.last_failure_at), "failing_since": moment(row.failing_since),
        "failures": row.consecutive_failures, "last_error": row.last_error,
        "previous_secret_until": moment(row.previous_secret_until), "is_webhook": row.kind == EndpointKind.WEBHOOK,
        "takes_secret": row.kind in SIGNED_ROBOTS,
    }


def _orgs() -> dict[int, Organization]:
    return {org.id: org for org in db.session.scalars(select(Organization))}


def _form_choices(orgs: dict[int, Organization]) -> dict[str, Any]:
    """The kinds of endpoint, event kinds and message types the forms offer."""
    return {
        "endpoint_kinds": [(kind.value, channel_name(kind.value)) for kind in EndpointKind],
        "event_kinds": [(kind.value, pick(info.name_zh, info.name_en)) for kind, info in KINDS.items()],
        "message_types": [(t.value, type_name(t.value)) for t in MessageType],
        "org_choices": [(org.slug, pick(org.name_zh, org.name_en)) for org in sorted(orgs.values(), key=lambda o: o.id)],
    }


# --- refusals ---------------------------------------------------------------------------------------

def url_refusal(message: str) -> str:
    """:func:`operations.check_endpoint_url`'s refusal in the page's language."""
    if message == operations.URL_NOT_HTTP:
        return gettext("Give an http:// or https:// URL with a host.")
    if message == operations.URL_WITH_CREDENTIALS:
        return gettext("Put no user name or password in the URL: the signature authenticates the messages.")
    host = message.split(" ", 1)[0]
    if message == operations.URL_NOT_PUBLIC.format(host=host):
        return gettext("%(host)s is not a public address: messages are only sent to public addresses.", host=host)
    return str(FIELD_MESSAGES["url"])


def field_errors(exc: Invalid) -> dict[str, str]:
    """The refused fields (of the schema or the operation), each with a message in the page's language."""
    errors: dict[str, str] = {}
    for name, message in exc.fields.items():
        field = name.split(".", 1)[0]
        if field == "url":
            errors.setdefault("url", url_refusal(message))
        elif field == "secret" and message == operations.WEBHOOK_SECRET_MADE:
            errors.setdefault("secret", gettext("A webhook gets a signing secret made for it: leave this field empty."))
        elif field in FIELD_MESSAGES:
            errors.setdefault(field, str(FIELD_MESSAGES[field]))
        else:
            errors.setdefault("form", gettext("Please correct the fields marked below."))
    return errors


# --- helpers of the views ---------------------------------------------------------------------------

def _endpoint_for(user: User, endpoint_id: int, *, change: bool = False) -> WebhookEndpoint:
    """The endpoint when the user may read it (else 404), and change it when ``change`` (else 403)."""
    row = visible_endpoint(user, endpoint_id)
    if row is None:
        abort(404)
    if change and not can(user, row.org_id, Role.EDITOR):
        abort(403)
    return row


def _back(row: WebhookEndpoint) -> Response:
    return redirect(url_for("pages.organizer_endpoint", endpoint_id=row.id), code=303)


def _secret_page(row: WebhookEndpoint, secret: str, *, rotated: bool) -> Response:
    """The answer that shows a webhook's secret, once: rendered for this POST only, never stored by the browser."""
    response = make_response(render_template(
        "organizer_endpoint_secret.html", endpoint=present_endpoint(row, _orgs()), secret=secret, rotated=rotated,
    ))
    response.headers["Cache-Control"] = "no-store"
    return response


def _edit_values(row: WebhookEndpoint, orgs: dict[int, Organization]) -> dict[str, Any]:
    return {"description": row.description, "kinds": list(row.kinds or []), "types": list(row.types or []),
            "orgs": [orgs[i].slug for i in row.org_ids or [] if i in orgs], "alerts": row.alerts}


def _endpoint_page(user: User, row: WebhookEndpoint, *, values: dict[str, Any] | None = None,
                   errors: dict[str, str] | None = None, status: int = 200) -> tuple[str, int]:
    query = DeliveryQuery.model_validate({"endpoint": row.id, "per_page": RECENT_DELIVERIES})
    entries, total = delivery_log(readable_org_ids(user), query)
    orgs = _orgs()  # once: the endpoint's filters, its edit form and the form's choices all name them
    return render_template(
        "organizer_endpoint.html", endpoint=present_endpoint(row, orgs), can_edit=can(user, row.org_id, Role.EDITOR),
        values=values or _edit_values(row, orgs), errors=errors or {},
        deliveries=log_rows(entries, user, {"endpoint": str(row.id)}), total_deliveries=total, **_form_choices(orgs),
    ), status


# --- the list ---------------------------------------------------------------------------------------

@bp.get("/organizer/endpoints")
@login_required
def organizer_endpoints() -> str:
    """The endpoints of the organizations the user may read, with their health; and the latest alerts."""
    user = current_user_object()
    orgs = _orgs()
    editor = EditorCheck(user)
    rows = visible_endpoints(user)
    alerts, _ = alerts_page(readable_org_ids(user), 1, RECENT_ALERTS)
    return render_template(
        "organizer_endpoints.html", endpoints=[present_endpoint(row, orgs) | {"can_edit": editor(row.org_id)} for row in rows],
        can_create=bool(editable_orgs(user)),
        alerts=[{"when": moment(alert.created_at), "org": pick(org.name_zh, org.name_en),
                 "kind": str(ALERT_KINDS.get(alert.kind, alert.kind)), "message": alert.message} for alert, org in alerts],
    )


# --- creating ---------------------------------------------------------------------------------------

def _new_form(orgs: list[Organization], values: dict[str, Any], errors: dict[str, str], status: int) -> tuple[str, int]:
    return render_template(
        "organizer_endpoint_form.html", orgs=[(org.slug, pick(org.name_zh, org.name_en)) for org in orgs],
        values=values, errors=errors, **_form_choices(_orgs()),
    ), status


@bp.route("/organizer/endpoints/new", methods=["GET", "POST"])
@login_required
def organizer_endpoint_new() -> tuple[str, int] | Response:
    """Create a webhook or a group robot in an organization the user is an editor of."""
    user = current_user_object()
    orgs = editable_orgs(user)
    if not orgs:
        abort(403)
    if request.method == "GET":
        values = {"org": orgs[0].slug, "kind": EndpointKind.WEBHOOK.value, "kinds": [], "types": [], "orgs": [],
                  "alerts": False}
        return _new_form(orgs, values, {}, 200)
    form = request.form
    values = {
        "org": form.get("org", ""), "kind": form.get("kind", EndpointKind.WEBHOOK.value), "url": form.get("url", ""),
        "description": form.get("description", ""), "kinds": form.getlist("kinds"), "types": form.getlist("types"),
        "orgs": form.getlist("orgs"), "alerts": "alerts" in form,
    }
    secret = form.get("secret", "")  # never shown again, not even on a refused form
    org = next((o for o in orgs if o.slug == values["org"]), None)
    if org is None and get_org_by_slug(values["org"]) is not None:
        abort(403)  # an organization the user may not add endpoints to
    try:
        if org is None:
            raise Invalid(fields={"org": "Unknown organization."})
        try:
            body = WebhookCreate.model_validate({
                "url": values["url"], "kind": values["kind"], "secret": secret or None, "alerts": values["alerts"],
                "org": org.slug, "description": values["description"], "kinds": values["kinds"], "types": values["types"],
                "orgs": values["orgs"],
            })
        except ValidationError as exc:
            raise from_validation_error(exc) from None
        row = operations.create_endpoint(
            org, body.url, kind=body.kind.value, secret=body.secret, alerts=body.alerts, description=body.description,
            kinds=[k.value for k in body.kinds], org_ids=org_ids_of(body.orgs), types=[t.value for t in body.types],
            created_by=user,
        )
    except Invalid as exc:
        db.session.rollback()
        return _new_form(orgs, values, field_errors(exc), 422)
    db.session.commit()
    if row.kind == EndpointKind.WEBHOOK:
        return _secret_page(row, row.secret, rotated=False)
    flash(gettext("The robot is added. Send it a test message to check that it is reached."))
    return _back(row)


# --- one endpoint -----------------------------------------------------------------------------------

@bp.get("/organizer/endpoints/<int:endpoint_id>")
@login_required
def organizer_endpoint(endpoint_id: int) -> tuple[str, int]:
    """An endpoint with its health and latest deliveries; for editors, the forms to change it."""
    user = current_user_object()
    return _endpoint_page(user, _endpoint_for(user, endpoint_id))


@bp.post("/organizer/endpoints/<int:endpoint_id>")
@login_required
def organizer_endpoint_update(endpoint_id: int) -> tuple[str, int] | Response:
    """Change the address, description, filters and alerts (and a signed robot's secret); an empty
    address or secret keeps the current one."""
    user = current_user_object()
    row = _endpoint_for(user, endpoint_id, change=True)
    form = request.form
    values = {"url": form.get("url", "").strip(), "description": form.get("description", ""),
              "kinds": form.getlist("kinds"), "types": form.getlist("types"), "orgs": form.getlist("orgs"),
              "alerts": "alerts" in form}
    secret = form.get("secret", "")
    try:
        try:
            changes = {key: value for key, value in values.items() if key != "url" or value}
            body = WebhookUpdate.model_validate({**changes, **({"secret": secret} if secret else {})})
        except ValidationError as exc:
            raise from_validation_error(exc) from None
        changes = body.model_dump(exclude_unset=True)
        changes["org_ids"] = org_ids_of(changes.pop("orgs", []))
        operations.update_endpoint(row, changes)
    except Invalid as exc:
        db.session.rollback()
        return _endpoint_page(user, row, values=values, errors=field_errors(exc), status=422)
    db.session.commit()
    flash(gettext("Saved"))
    return _back(row)


@bp.post("/organizer/endpoints/<int:endpoint_id>/enable")
@login_required
def organizer_endpoint_enable(endpoint_id: int) -> Response:
    """Send to the endpoint again; its failures are forgotten."""
    row = _endpoint_for(current_user_object(), endpoint_id, change=True)
    operations.update_endpoint(row, {"enabled": True})
    db.session.commit()
    flash(gettext("The endpoint is enabled and its failures are cleared. Replay what it missed from the delivery log."))
    return _back(row)


@bp.post("/organizer/endpoints/<int:endpoint_id>/disable")
@login_required
def organizer_endpoint_disable(endpoint_id: int) -> Response:
    """Stop sending to the endpoint; what waits to go to it is cancelled."""
    row = _endpoint_for(current_user_object(), endpoint_id, change=True)
    operations.update_endpoint(row, {"enabled": False})
    db.session.commit()
    flash(gettext("The endpoint is disabled: nothing is sent to it, and what was waiting is cancelled."))
    return _back(row)


@bp.post("/organizer/endpoints/<int:endpoint_id>/rotate")
@login_required
def organizer_endpoint_rotate(endpoint_id: int) -> Response:
    """A webhook's new signing secret, shown once; the previous one signs too for 24 hours."""
    row = _endpoint_for(current_user_object(), endpoint_id, change=True)
    try:
        secret = operations.rotate_secret(row)
    except Conflict:
        db.session.rollback()
        flash(gettext("Only webhooks get secrets made here; give a robot its new signing secret in the form."), "error")
        return _back(row)
    db.session.commit()
    return _secret_page(row, secret, rotated=True)


@bp.post("/organizer/endpoints/<int:endpoint_id>/test")
@login_required
def organizer_endpoint_test(endpoint_id: int) -> Response:
    """Queue a test message (``ping``) to the endpoint."""
    row = _endpoint_for(current_user_object(), endpoint_id, change=True)
    try:
        operations.ping(row)
    except Conflict:
        db.session.rollback()
        flash(gettext("The endpoint is disabled: enable it first."), "error")
        return _back(row)
    db.session.commit()
    flash(gettext("A test message is queued."), "queued")
    return _back(row)


@bp.route("/organizer/endpoints/<int:endpoint_id>/delete", methods=["GET", "POST"])
@login_required
def organizer_endpoint_delete(endpoint_id: int) -> str | Response:
    """Ask first; then delete the endpoint and its deliveries."""
    user = current_user_object()
    row = _endpoint_for(user, endpoint_id, change=True)
    if request.method == "GET":
        _, total = delivery_log(readable_org_ids(user), DeliveryQuery.model_validate({"endpoint": row.id, "per_page": 1}))
        return render_template("organizer_endpoint_delete.html", endpoint=present_endpoint(row, _orgs()), total=total)
    shown = display_url(row.kind, row.url)
    operations.delete_endpoint(row)
    db.session.commit()
    flash(gettext("The endpoint %(url)s is deleted.", url=shown))
    return redirect(url_for("pages.organizer_endpoints"), code=303)
