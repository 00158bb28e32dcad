"""Webhooks (Standard Webhooks): the project's endpoint and its signing secret, the outbox written
with each event, and the worker that delivers it (signed, in order per connection, retried)."""
