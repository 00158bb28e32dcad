"""Provider quirks that data cannot express, one small module per provider, named in its entry."""
