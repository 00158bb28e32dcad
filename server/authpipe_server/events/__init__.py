"""The event log: every state change of a connection, recorded in the transaction that made it."""
