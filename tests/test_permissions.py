"""Who may do what: 401 without a token, 403 outside one's organization, viewers read only."""
import pytest

from scheduler.privacy.notice import NOTICE_VERSION

from scheduler.auth.operations import revoke_token, create_token
from scheduler.extensions import db
from tests.factories import auth, create_event, create_org, create_user, event_body


@pytest.fixture
def tree(ctx):
    """The bureau with two county offices; a lab below Xinhui."""
    bureau = create_org("bureau")
    xinhui = create_org("xinhui", parent=bureau, county="xinhui")
    taishan = create_org("taishan", parent=bureau, county="taishan")
    lab = create_org("xinhui-lab", parent=xinhui, county="xinhui")
    return {"bureau": bureau, "xinhui": xinhui, "taishan": taishan, "lab": lab}


ACTIONS = [
    ("post", "/api/v1/events", lambda e: event_body("xinhui")),
    ("patch", "/api/v1/events/{id}", lambda e: {"title": "新标题"}),
    ("post", "/api/v1/events/{id}/publish", lambda e: None),
    ("post", "/api/v1/events/{id}/cancel", lambda e: {"reason": "天气"}),
    ("get", "/api/v1/events/{id}/registrations", lambda e: None),
]


@pytest.mark.parametrize("published", [False, True])
@pytest.mark.parametrize("method,path,body", ACTIONS)
def test_no_token_is_401(client, tree, method, path, body, published):
    event = create_event(tree["xinhui"], publish=published)
    response = getattr(client, method)(path.format(id=event.id), json=body(event))
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_bad_or_revoked_token_is_401(client, tree):
    user = create_user("editor", tree["xinhui"])
    assert client.get("/api/v1/events", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/api/v1/events", headers={"Authorization": "Basic abc"}).status_code == 401
    token, clear = create_token(user)
    db.session.commit()
    headers = {"Authorization": f"Bearer {clear}"}
    assert client.post("/api/v1/events", json=event_body("xinhui"), headers=headers).status_code == 201
    revoke_token(token)
    db.session.commit()
    response = client.post("/api/v1/events", json=event_body("xinhui"), headers=headers)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "invalid_token"


def test_editor_changes_own_org_and_children_only(client, tree):
    headers = auth(create_user("editor", tree["xinhui"]))
    assert client.post("/api/v1/events", json=event_body("xinhui"), headers=headers).status_code == 201
    assert client.post("/api/v1/events", json=event_body("xinhui-lab"), headers=headers).status_code == 201
    response = client.post("/api/v1/events", json=event_body("taishan"), headers=headers)
    assert response.status_code == 403
    assert response.json["error"]["code"] == "forbidden"
    other = create_event(tree["taishan"], publish=True)
    assert client.patch(f"/api/v1/events/{other.id}", json={"title": "x"}, headers=headers).status_code == 403
    assert client.post(f"/api/v1/events/{other.id}/cancel", json={"reason": "x"}, headers=headers).status_code == 403
    assert client.get(f"/api/v1/events/{other.id}/registrations", headers=headers).status_code == 403


def test_editor_cannot_move_event_to_foreign_org(client, tree):
    headers = auth(create_user("editor", tree["xinhui"]))
    event = create_event(tree["xinhui"])
    response = client.patch(f"/api/v1/events/{event.id}", json={"org": "taishan"}, headers=headers)
    assert response.status_code == 403
    assert client.get(f"/api/v1/events/{event.id}", headers=headers).json["org"] == "xinhui"


def test_viewer_reads_but_cannot_change(client, tree):
    headers = auth(create_user("viewer", tree["xinhui"]))
    draft = create_event(tree["xinhui"])
    assert client.get(f"/api/v1/events/{draft.id}", headers=headers).status_code == 200
    assert client.get(f"/api/v1/events/{draft.id}/registrations", headers=headers).status_code == 200
    assert client.post("/api/v1/events", json=event_body("xinhui"), headers=headers).status_code == 403
    assert client.patch(f"/api/v1/events/{draft.id}", json={"title": "x"}, headers=headers).status_code == 403
    assert client.post(f"/api/v1/events/{draft.id}/publish", headers=headers).status_code == 403


def test_bureau_manager_manages_everything_below(client, tree):
    headers = auth(create_user("manager", tree["bureau"]))
    event = create_event(tree["lab"])
    assert client.post(f"/api/v1/events/{event.id}/publish", headers=headers).status_code == 200


def test_admin_does_everything(client, tree):
    headers = auth(create_user(None, admin=True))
    event = create_event(tree["taishan"])
    assert client.patch(f"/api/v1/events/{event.id}", json={"title": "管理员修改"}, headers=headers).json["title"] == "管理员修改"


def test_drafts_visible_only_to_members(client, tree):
    draft = create_event(tree["xinhui"], title="草稿活动")
    create_event(tree["xinhui"], publish=True, title="已发布活动")
    outsider = auth(create_user("editor", tree["taishan"]))
    member = auth(create_user("viewer", tree["xinhui"]))
    titles = lambda headers: {e["title"] for e in client.get("/api/v1/events", headers=headers).json["items"]}  # noqa: E731
    assert titles({}) == {"已发布活动"}
    assert titles(outsider) == {"已发布活动"}
    assert titles(member) == {"已发布活动", "草稿活动"}
    assert client.get(f"/api/v1/events/{draft.id}", headers=outsider).status_code == 404


def test_viewers_see_masked_phones(client, tree):
    event = create_event(tree["xinhui"], publish=True)
    client.post(f"/api/v1/events/{event.id}/registrations", json={"name": "张三", "phone": "13800138000", "consent": NOTICE_VERSION})
    viewer = auth(create_user("viewer", tree["xinhui"]))
    editor = auth(create_user("editor", tree["xinhui"]))
    assert client.get(f"/api/v1/events/{event.id}/registrations", headers=viewer).json["items"][0]["phone"] == "+86 138****8000"
    assert client.get(f"/api/v1/events/{event.id}/registrations", headers=editor).json["items"][0]["phone"] == "+8613800138000"
