"""Health endpoints."""
from sqlalchemy.exc import OperationalError

from scheduler.extensions import db


def test_healthz(client):
    assert client.get("/healthz").json == {"status": "ok"}


def test_readyz_reports_database(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["database"] == "ok"


def test_readyz_503_when_database_unreachable(client, monkeypatch):
    def broken(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(db.session, "execute", broken)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["status"] == "unavailable"


#: A scraper holding METRICS_TOKEN (who may scrape at all: tests/test_metrics_auth.py).
SCRAPER = {"Authorization": "Bearer scrape-secret"}


def test_metrics_show_the_engine_in_prometheus_text(app, client, ctx, clock, monkeypatch):
    import datetime as dt

    monkeypatch.setitem(app.config, "METRICS_TOKEN", "scrape-secret")
    from scheduler.reminders.dispatch import dispatch_due
    from tests.factories import CST, create_event, create_org

    create_event(create_org("wyu"), publish=True, reminders=["P1D"])
    clock.set(dt.datetime(2024, 6, 21, 9, 30, tzinfo=CST))  # the reminder is half an hour overdue
    response = client.get("/metrics", headers=SCRAPER)
    assert response.status_code == 200 and response.content_type.startswith("text/plain")
    text = response.get_data(as_text=True)
    assert "scheduler_reminders_overdue_seconds 1800.0" in text
    assert "scheduler_reminders_pending 1.0" in text
    dispatch_due()
    text = client.get("/metrics", headers=SCRAPER).get_data(as_text=True)
    assert "scheduler_reminders_overdue_seconds 0.0" in text and "Set-Cookie" not in str(client.get("/metrics", headers=SCRAPER).headers)
