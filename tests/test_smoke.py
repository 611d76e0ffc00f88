"""First checks that the wiring works."""
from tests.factories import auth, create_org, create_user, event_body


def test_create_and_read_event(client, ctx):
    org = create_org("xinhui", county="xinhui")
    headers = auth(create_user("editor", org))
    response = client.post("/api/v1/events", json=event_body("xinhui"), headers=headers)
    assert response.status_code == 201, response.json
    event = response.json
    assert event["status"] == "draft"
    assert event["starts_at"] == "2024-07-06T08:30:00+08:00"
    assert client.get(f"/api/v1/events/{event['id']}").status_code == 404  # drafts are private
    assert client.get(f"/api/v1/events/{event['id']}", headers=headers).json["title"] == "走进中微子实验室"
