"""Events of notification requests: the outbox every change writes to, webhooks that
deliver it (Standard Webhooks), and the feed behind GraphQL subscriptions."""
