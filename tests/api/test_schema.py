"""The API exercised from its own OpenAPI description, against the live server.

Every operation in /api/v1/openapi.json is called four ways, with requests
built only from the schema (its paths, parameters, request bodies and
examples): as a member with a valid request, without a token, with a
stranger's token on the team's ids, and with an empty body where one is
required. Each answer must be one the schema documents, never a 5xx, and a
JSON answer must carry the properties its documented schema requires.
"""

from datetime import date

import httpx
import pytest

from .conftest import fund, render_all, submit, token_for

METHODS = ("get", "post", "put", "patch", "delete")


def resolve(schema: dict, spec: dict) -> dict:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def example(name: str, schema: dict, spec: dict, known: dict):
    """A value for a field or parameter, from what the schema says about it."""
    if name in known:
        return known[name]
    schema = resolve(schema, spec)
    if "anyOf" in schema:
        schema = next(s for s in schema["anyOf"] if s.get("type") != "null")
    if schema.get("examples"):
        return schema["examples"][0]
    if "enum" in schema:
        return next((v for v in schema["enum"] if v != ""), schema["enum"][0])
    kind = schema.get("type")
    if kind == "object":
        return {
            key: example(key, value, spec, known)
            for key, value in schema.get("properties", {}).items()
            if key in schema.get("required", [])
        }
    if kind == "array":
        return [example(name, schema.get("items", {}), spec, known)]
    if kind == "integer":
        return 1
    if kind == "boolean":
        return False
    if schema.get("format") == "date":
        return date.today().isoformat()
    return "schema test"


def build(path: str, operation: dict, spec: dict, known: dict):
    query = {}
    for parameter in operation.get("parameters", []):
        value = example(parameter["name"], parameter.get("schema", {}), spec, known)
        if parameter["in"] == "path":
            path = path.replace("{" + parameter["name"] + "}", str(value))
        elif parameter["in"] == "query":
            query[parameter["name"]] = "true" if value is True else value
    body = None
    if "requestBody" in operation:
        content = operation["requestBody"]["content"]["application/json"]["schema"]
        body = example("", content, spec, known)
    return path, query, body


def check_documented(response: httpx.Response, operation: dict, spec: dict, label: str):
    status = response.status_code
    assert status < 500, f"{label}: {status} {response.text[:300]}"
    documented = operation["responses"]
    assert str(status) in documented, f"{label}: {status} is not documented ({list(documented)})"
    content = documented[str(status)].get("content", {})
    if "application/json" in content:
        assert response.headers["content-type"].startswith("application/json"), label
        schema = resolve(content["application/json"]["schema"], spec)
        body = response.json()
        missing = [key for key in schema.get("required", []) if key not in body]
        assert not missing, f"{label}: answer lacks {missing}"
    elif "image/png" in content:
        assert response.headers["content-type"] == "image/png", label
        assert response.content.startswith(b"\x89PNG"), label


def success_code(operation: dict) -> int:
    return min(int(code) for code in operation["responses"] if code.startswith("2"))


@pytest.mark.django_db(transaction=True)
def test_every_operation_in_the_schema_answers_as_documented(live_server, owner, stranger):
    team = owner.teams.get()
    fund(team, owner)
    draft = submit(team, owner, None, count=2, seed=7)
    render_all()
    image = draft.generations.first()
    known = {"batch_id": draft.pk, "image_id": image.pk, "ids": [image.pk], "cursor": "",
             "member": owner.username}  # fmt: skip
    member = {"Authorization": f"Bearer {token_for(owner)}"}
    outsider = {"Authorization": f"Bearer {token_for(stranger)}"}

    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        spec_response = http.get("/api/v1/openapi.json")
        assert spec_response.status_code == 200
        spec = spec_response.json()
        assert spec["openapi"].startswith("3.")
        operations = [
            (path, method, operation)
            for path, item in spec["paths"].items()
            for method, operation in item.items()
            if method in METHODS
        ]
        # Every endpoint the API promises is described.
        assert {(m, p) for p, m, _ in operations} >= {
            ("post", "/api/v1/batches"),
            ("get", "/api/v1/batches/{batch_id}"),
            ("post", "/api/v1/batches/{batch_id}/cancel"),
            ("get", "/api/v1/images"),
            ("post", "/api/v1/images/promote"),
            ("get", "/api/v1/images/{image_id}/download"),
            ("get", "/api/v1/balance"),
        }
        for path, method, operation in operations:
            url, query, body = build(path, operation, spec, known)
            label = f"{method.upper()} {path}"
            kwargs = {"params": query} | ({"json": body} if body is not None else {})

            answer = http.request(method, url, headers=member, **kwargs)
            check_documented(answer, operation, spec, label)
            assert answer.status_code == success_code(operation), f"{label}: {answer.text[:300]}"
            if method == "post" and "{" not in path and "id" in answer.json():
                # What a create made is what the paths after it name: POST
                # /campaigns gives {campaign_id}. Ids are not 1 on PostgreSQL,
                # whose sequences go on counting across tests.
                known[path.rsplit("/", 1)[-1].removesuffix("es").removesuffix("s") + "_id"] = (
                    answer.json()["id"]
                )

            anonymous = http.request(method, url, **kwargs)
            check_documented(anonymous, operation, spec, label + " without a token")
            assert anonymous.status_code == 401

            if "{" in path or "ids" in (body or {}):
                foreign = http.request(method, url, headers=outsider, **kwargs)
                check_documented(foreign, operation, spec, label + " by a stranger")
                assert foreign.status_code == 404, f"{label} by a stranger: {foreign.status_code}"

            if body is not None:
                empty = http.request(method, url, headers=member, params=query, json={})
                check_documented(empty, operation, spec, label + " with an empty body")
                assert empty.status_code == 400
