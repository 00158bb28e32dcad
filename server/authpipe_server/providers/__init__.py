"""Providers: the declarative catalog (one YAML entry per provider, schema-checked at start),
the client every service talks to a provider through, and small named hooks for real quirks."""
