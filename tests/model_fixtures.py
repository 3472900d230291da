"""Session-wide fixtures that build the tiny offline models once (owner: models)."""
