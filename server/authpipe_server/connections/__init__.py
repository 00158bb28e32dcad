"""Connection records: a user's grant at a provider, its public view, and its sealed secrets."""
