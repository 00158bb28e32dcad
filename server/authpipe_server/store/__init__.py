"""Storage: SQLAlchemy models, engine set-up and migrations. It only ever sees ciphertext."""
