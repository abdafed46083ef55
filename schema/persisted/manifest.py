"""Reading a manifest of trusted documents, in the formats front-end tools write.

- graphql-codegen's client preset (`persistedDocuments`) and Relay's compiler
  (`persistConfig.file`): one JSON object, id (a hash) -> document text;
- Apollo's `persisted-query-manifest.json`: `{"format": "apollo-persisted-query-manifest",
  "version": 1, "operations": [{"id", "name", "type", "body"}]}`.

Ids are taken as written: each tool hashes in its own way (SHA-256, SHA-1, MD5), and the
client sends back what the tool gave it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from settings import ConfigurationError

APOLLO_FORMAT = "apollo-persisted-query-manifest"


def read_manifest(path: str) -> dict[str, str]:
    """The manifest's documents by id; ConfigurationError naming what is wrong."""
    try:
        content = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigurationError(f"TRUSTED_DOCUMENTS: cannot read {path}: {error}") from None
    except ValueError as error:
        raise ConfigurationError(f"TRUSTED_DOCUMENTS: {path} is not JSON: {error}") from None
    if isinstance(content, dict) and "operations" in content and "format" in content:
        documents = _apollo_operations(path, content)
    elif isinstance(content, dict):
        documents = list(content.items())
    else:
        raise ConfigurationError(
            f"TRUSTED_DOCUMENTS: {path} is neither an object of id -> document "
            "nor an Apollo persisted query manifest"
        )
    return _by_id(path, documents)


def _apollo_operations(path: str, content: dict[str, Any]) -> list[tuple[Any, Any]]:
    if content.get("format") != APOLLO_FORMAT or content.get("version") != 1:
        raise ConfigurationError(
            f"TRUSTED_DOCUMENTS: {path} is not an {APOLLO_FORMAT} of version 1 "
            f"(format {content.get('format')!r}, version {content.get('version')!r})"
        )
    operations = content["operations"]
    if not isinstance(operations, list) or not all(isinstance(o, dict) for o in operations):
        raise ConfigurationError(f"TRUSTED_DOCUMENTS: {path}: operations must be a list of objects")
    return [(operation.get("id"), operation.get("body")) for operation in operations]


def _by_id(path: str, documents: list[tuple[Any, Any]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for number, (document_id, text) in enumerate(documents, start=1):
        if not isinstance(document_id, str) or not document_id.strip():
            raise ConfigurationError(f"TRUSTED_DOCUMENTS: {path}: document {number} has no id")
        if not isinstance(text, str) or not text.strip():
            raise ConfigurationError(
                f"TRUSTED_DOCUMENTS: {path}: document {document_id} has no text"
            )
        if found.get(document_id, text) != text:
            raise ConfigurationError(
                f"TRUSTED_DOCUMENTS: {path}: id {document_id} is given two different documents"
            )
        found[document_id] = text
    if not found:
        raise ConfigurationError(f"TRUSTED_DOCUMENTS: {path} holds no document")
    return found
