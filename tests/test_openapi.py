"""The OpenAPI document covers every endpoint and is valid; the docs page renders it."""
import jsonschema
from openapi_spec_validator import validate

from tests.factories import create_event, create_org


def test_document_is_valid_openapi_3_1(client):
    spec = client.get("/api/v1/openapi.json").json
    assert spec["openapi"].startswith("3.1")
    validate(spec)


def test_every_api_route_is_documented(client, app):
    spec = client.get("/api/v1/openapi.json").json
    documented = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.endpoint == "api.openapi_document":
            continue
        path = rule.rule
        for arg in rule.arguments:
            path = path.replace(f"<int:{arg}>", f"{{{arg}}}").replace(f"<{arg}>", f"{{{arg}}}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method.lower()) in documented, (path, method)


def test_operations_declare_schemas_and_errors(client):
    spec = client.get("/api/v1/openapi.json").json
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert op["summary"] and op["operationId"], (path, method)
            success = [code for code in op["responses"] if code.startswith("2")]
            assert success, (path, method)
            if method in ("post", "patch", "put") and "requestBody" in op:
                assert "422" in op["responses"] and "400" in op["responses"]
    assert {"EventCreate", "EventUpdate", "EventOut", "RegistrationCreate", "ProgressOut", "Error", "StudyTourDetails"} <= set(spec["components"]["schemas"])


def test_real_responses_match_the_document(client, ctx):
    spec = client.get("/api/v1/openapi.json").json
    event = create_event(create_org("wyu"), publish=True)
    body = client.get(f"/api/v1/events/{event.id}").json
    schema = {**spec["components"]["schemas"]["EventOut"], "components": spec["components"]}
    resolver_schema = {"$ref": "#/components/schemas/EventOut", "components": spec["components"]}
    jsonschema.validate(body, resolver_schema)
    assert schema["type"] == "object"


def test_docs_page_lists_every_path(client):
    spec = client.get("/api/v1/openapi.json").json
    page = client.get("/api/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for path in spec["paths"]:
        assert path in html


def test_unknown_api_path_is_json_404(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"
    response = client.delete("/api/v1/events")
    assert response.status_code == 405
    assert response.json["error"]["code"] == "method_not_allowed"


def test_unexpected_failure_is_json_500_and_saves_nothing(client, app, monkeypatch):
    import scheduler.events.api as events_api

    def boom(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(events_api, "list_events", boom)
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    response = client.get("/api/v1/events")
    assert response.status_code == 500
    assert response.json["error"]["code"] == "internal_error"


def test_oversized_body_is_json_413(client):
    response = client.post("/api/v1/events/1/registrations", data=b"{" + b" " * (3 * 1024 * 1024) + b"}", content_type="application/json")
    assert response.status_code == 413
    assert response.json["error"]["code"] == "request_entity_too_large"
