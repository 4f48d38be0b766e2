"""The GraphQL layer: maps types and calls services; no rules live here."""
