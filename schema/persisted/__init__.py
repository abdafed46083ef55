"""Persisted documents: Apollo's automatic persisted queries and a manifest of trusted ones.

Front-end teams send a document's id instead of its text: `extensions.persistedQuery.
sha256Hash` (Apollo Client's persisted-queries link) or `documentId`/`id`/`doc_id` (clients
built on graphql-codegen's or Relay's persisted documents). `documents.py` turns such a
request into the text Strawberry runs, or into the error the client expects."""
