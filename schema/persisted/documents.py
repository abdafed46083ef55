"""Which document a request runs, when it names one by id: the rules of persisted documents.

- Automatic persisted queries (Apollo): a hash alone runs the text registered under it, or
  answers PersistedQueryNotFound (PersistedQueryNotSupported with KEYBIN_APQ=off) so the
  client sends the text with its hash; a text is kept only when its hash is its SHA-256 and
  it passes the checks a request meets (schema/persisted/checks.py).
- Trusted documents (TRUSTED_DOCUMENTS): asked for by id, as `extensions.persistedQuery.
  sha256Hash` or `documentId` (`id`, `doc_id`). In production they are the only documents
  answered: any other id or text is refused with PERSISTED_QUERY_NOT_ALLOWED, and nothing is
  registered. In development free text and automatic persisted queries still work.

Every document still runs through the whole request path afterwards: the limits, the
operation types the transport allows, authentication and everything else apply as to text."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from graphql import GraphQLError, parse
from graphql.language import OperationType
from strawberry import Schema

from schema.fast.plans import plan_ahead
from schema.persisted.apq import AutomaticStore, sha256_hex
from schema.persisted.checks import operations, refusals
from schema.persisted.manifest import read_manifest
from settings import ConfigurationError, Settings

log = logging.getLogger("keybin.persisted")

# The fields other clients name a document with (GraphQL over HTTP's trusted documents,
# Relay's examples).
ID_FIELDS = ("documentId", "id", "doc_id")
NOT_ALLOWED = "PERSISTED_QUERY_NOT_ALLOWED"


def not_found() -> GraphQLError:
    # The message and code Apollo's persisted-queries link looks for, to send the text.
    return GraphQLError("PersistedQueryNotFound", extensions={"code": "PERSISTED_QUERY_NOT_FOUND"})


def not_supported() -> GraphQLError:
    # Apollo's link stops sending hashes to this server.
    return GraphQLError(
        "PersistedQueryNotSupported", extensions={"code": "PERSISTED_QUERY_NOT_SUPPORTED"}
    )


def not_allowed(what: str) -> GraphQLError:
    return GraphQLError(
        f"This server answers only its trusted documents, asked for by id: {what}.",
        extensions={"code": NOT_ALLOWED},
    )


def invalid(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "INVALID_INPUT"})


def document_id(body: Mapping[str, Any]) -> Any:
    """The id a request names its document by outside `extensions`, if any."""
    return next((body[name] for name in ID_FIELDS if body.get(name) is not None), None)


class PersistedDocuments:
    """The trusted documents (by id, by the SHA-256 of their text, by text) and the
    automatically persisted ones."""

    def __init__(self, schema: Schema, settings: Settings, trusted: dict[str, str]) -> None:
        self.schema = schema
        self.trusted_only = settings.production and bool(trusted)
        self.trusted = trusted
        self.trusted_ids = dict(trusted)
        for text in trusted.values():
            digest = sha256_hex(text)
            self.trusted_ids.setdefault(digest, text)
            self.trusted_ids.setdefault(f"sha256:{digest}", text)
        self.trusted_texts = frozenset(trusted.values())
        self.store = (
            AutomaticStore(settings.apq_max_documents, settings.apq_max_bytes)
            if settings.apq and not self.trusted_only
            else None
        )

    @classmethod
    def from_settings(cls, schema: Schema, settings: Settings) -> PersistedDocuments:
        """With the manifest read and each of its documents checked: ConfigurationError
        naming the first that a request could not run."""
        trusted = read_manifest(settings.trusted_documents) if settings.trusted_documents else {}
        documents = cls(schema, settings, trusted)
        for trusted_id, text in trusted.items():
            documents.check_trusted(trusted_id, text)
        if trusted:
            log.info(
                "%d trusted documents%s",
                len(trusted),
                " (only these)" if documents.trusted_only else "",
            )
        return documents

    def check_trusted(self, trusted_id: str, text: str) -> None:
        """Parsed and validated as a request's document, each operation; queries admitted
        (schema/fast/admitted.py), so their first request already skips the pipeline."""
        try:
            named = [
                (o.name.value if o.name else None, o.operation) for o in operations(parse(text))
            ]
        except GraphQLError as error:
            raise _refused(trusted_id, None, [error]) from None
        if not named:
            raise _refused(trusted_id, None, [GraphQLError("it holds no operation")])
        admitted = getattr(self.schema, "admitted", None)
        for name, operation in named:
            errors = refusals(self.schema, text, name)
            if errors:
                raise _refused(trusted_id, name, errors)
            if admitted is not None and operation is OperationType.QUERY:
                admitted.admit(text, name)
                if len(named) == 1 and name is not None:
                    admitted.admit(text, None)  # as a client that sends no operationName

    def plan(self) -> None:
        """Each trusted query's and subscription's plan (schema/fast/plans.py), built before
        the first request; once the database is set up, since some plans depend on it."""
        for text in self.trusted.values():
            document = parse(text)
            for operation in operations(document):
                if operation.operation is not OperationType.MUTATION:
                    name = operation.name.value if operation.name else None
                    plan_ahead(self.schema._schema, document, name)

    def text_for(
        self,
        query: Any,
        extensions: Mapping[str, Any] | None,
        named_id: Any,
        operation_name: str | None,
        *,
        may_register: bool,
    ) -> str | GraphQLError | None:
        """The text this request runs; None when it names no document (Strawberry answers
        that); or the error to answer with instead. `named_id` counts only without text."""
        persisted = extensions.get("persistedQuery") if extensions else None
        if persisted is not None:
            return self._automatic(query, persisted, operation_name, may_register=may_register)
        if not isinstance(query, str):
            return None if named_id is None else self._by_id(named_id)
        if self.trusted_only and query not in self.trusted_texts:
            return not_allowed("this text is not one of them")
        return query

    def _automatic(
        self, query: Any, persisted: Any, operation_name: str | None, *, may_register: bool
    ) -> str | GraphQLError:
        if not isinstance(persisted, dict):
            return invalid("extensions.persistedQuery needs version 1 and a sha256Hash.")
        sha256 = persisted.get("sha256Hash")
        if persisted.get("version") != 1 or not isinstance(sha256, str) or not sha256:
            return invalid("extensions.persistedQuery needs version 1 and a sha256Hash.")
        trusted = self._trusted(sha256)
        if not isinstance(query, str):
            if trusted is not None:
                return trusted
            if self.trusted_only:
                return not_allowed(f"{sha256} is not one of them")
            if self.store is None:
                return not_supported()
            return self.store.get(sha256) or not_found()
        if trusted is not None:
            return query if query == trusted else _mismatch()
        if sha256_hex(query) != sha256:
            return _mismatch()
        if self.trusted_only:
            return not_allowed(f"{sha256} is not one of them")
        if may_register:
            self._register(sha256, query, operation_name)
        return query

    def _register(self, sha256: str, query: str, operation_name: str | None) -> None:
        """Kept only if a request could run it: nothing the limits refuse takes room."""
        store = self.store
        if store is None or store.get(sha256) is not None:
            return
        if not refusals(self.schema, query, operation_name):
            store.keep(sha256, query)

    def known_text(self, body: Mapping[str, Any]) -> str | None:
        """The text a request without one names by id, if it is known now; nothing is
        registered (the answer cache keys such a request's answer on its document)."""
        extensions = body.get("extensions")
        persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
        if persisted is None:
            named_id = document_id(body)
            return self._trusted(named_id) if isinstance(named_id, str) and named_id else None
        if not isinstance(persisted, dict) or persisted.get("version") != 1:
            return None
        sha256 = persisted.get("sha256Hash")
        if not isinstance(sha256, str) or not sha256:
            return None
        trusted = self._trusted(sha256)
        if trusted is not None or self.store is None:
            return trusted
        return self.store.get(sha256)

    def _by_id(self, named_id: Any) -> str | GraphQLError:
        if not isinstance(named_id, str) or not named_id:
            return invalid("documentId must be a string.")
        trusted = self._trusted(named_id)
        if trusted is not None:
            return trusted
        if self.trusted_only:
            return not_allowed(f"{named_id} is not one of them")
        return not_found()

    def _trusted(self, named_id: str) -> str | None:
        text = self.trusted_ids.get(named_id)
        if text is None and ":" in named_id:  # "sha256:<hash>", "md5:<hash>"...
            text = self.trusted_ids.get(named_id.partition(":")[2])
        return text


def _mismatch() -> GraphQLError:
    return invalid("extensions.persistedQuery.sha256Hash does not match the query's text.")


def _refused(trusted_id: str, name: str | None, errors: list[GraphQLError]) -> ConfigurationError:
    operation = f" (operation {name})" if name else ""
    reasons = "; ".join(error.message for error in errors)
    return ConfigurationError(
        f"TRUSTED_DOCUMENTS: document {trusted_id}{operation} cannot be served: {reasons}"
    )
