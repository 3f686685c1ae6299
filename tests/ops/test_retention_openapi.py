"""The OpenAPI document, the validator and the store agree on the retention fields."""

from __future__ import annotations

from streamkit.server.store.base import RETENTION_FIELDS
from tests.http_api import Api


async def test_patch_is_documented_with_the_retention_fields(api: Api) -> None:
    doc = await api.ok("GET", "/api/openapi.json")
    patch = doc["paths"]["/api/streams/{stream}"]["patch"]
    assert patch["operationId"] == "updateStream"
    body = patch["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/StreamUpdate"}
    assert {"404", "422"} <= set(patch["responses"])
    schemas = doc["components"]["schemas"]
    assert set(schemas["StreamUpdate"]["properties"]) == set(RETENTION_FIELDS)
    assert set(RETENTION_FIELDS) <= set(schemas["StreamCreate"]["properties"])
    assert set(RETENTION_FIELDS) <= set(schemas["Stream"]["properties"])
    stream = await api.stream("orders", max_bytes=10, max_age_ms=20)
    assert set(RETENTION_FIELDS) <= set(stream)
