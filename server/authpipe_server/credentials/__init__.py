"""Credentials: reading a working token fast, and refreshing it — on demand and ahead of
expiry — one refresh at a time per connection, however many callers and processes ask."""
