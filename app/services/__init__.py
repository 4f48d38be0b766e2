"""The domain: plain async functions on an AsyncSession; no GraphQL, no HTTP."""
