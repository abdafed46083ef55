"""The GraphQL layer: types, inputs, payloads and the Schema object. No business rules here."""
