"""backinstock: a self-hostable back-in-stock notification service (a GraphQL API)."""
