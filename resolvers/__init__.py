"""The domain operations: plain async functions over models/, one module per capability."""
