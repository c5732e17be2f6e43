"""A small client for the Confluent-compatible schema registry API (standard library only)."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import fastavro

from . import connections

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class RegistryError(RuntimeError):
    """The registry refused a request or could not be reached (`status` None)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class SchemaRegistry:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._by_id: dict[int, Any] = {}

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        secured = connections.current()
        headers = {"Content-Type": CONTENT_TYPE, "Accept": CONTENT_TYPE, **secured.registry_headers()}
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=secured.registry_ssl_context()) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            raise RegistryError(f"{method} {self.url}{path} answered {error.code}: {error.read().decode(errors='replace')}", error.code) from error
        except urllib.error.URLError as error:
            raise RegistryError(f"schema registry not reachable at {self.url}: {error.reason}; run `npx diamond services up`") from error

    def register(self, subject: str, schema: dict[str, Any]) -> int:
        return int(self._request("POST", f"/subjects/{subject}/versions", {"schema": json.dumps(schema), "schemaType": "AVRO"})["id"])

    def schema_json(self, schema_id: int) -> dict[str, Any]:
        return json.loads(self._request("GET", f"/schemas/ids/{schema_id}")["schema"])

    def schema(self, schema_id: int) -> Any:
        """The parsed writer schema for `schema_id`, fetched once."""
        if schema_id not in self._by_id:
            self._by_id[schema_id] = fastavro.parse_schema(self.schema_json(schema_id))
        return self._by_id[schema_id]

    def versions(self, subject: str) -> list[int]:
        return list(self._request("GET", f"/subjects/{subject}/versions"))

    def schema_id(self, subject: str, version: int | str = "latest") -> int:
        return int(self._request("GET", f"/subjects/{subject}/versions/{version}")["id"])

    def latest(self, subject: str) -> dict[str, Any] | None:
        """The latest version of `subject` as {"id", "version", "schema": parsed JSON}; None when nothing is registered under it."""
        try:
            body = self._request("GET", f"/subjects/{subject}/versions/latest")
        except RegistryError as error:
            if error.status == 404:
                return None
            raise
        return {"id": int(body["id"]), "version": int(body["version"]), "schema": json.loads(body["schema"])}
