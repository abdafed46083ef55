"""Mutations, one module per capability; the root Mutation merges them."""
