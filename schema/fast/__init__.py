"""The fast paths: ways of answering the same GraphQL requests as graphql-core and
Strawberry would, with less work per request. What each one is, which benchmark figure it
earns and how it is proven to answer the same: schema/fast/README.md."""
