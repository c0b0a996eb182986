"""Safe loading of users' files: models and sequences, nothing in them ever run."""
