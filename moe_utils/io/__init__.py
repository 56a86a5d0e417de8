"""Files: every project location (paths), atomic writes, figures saved beside their numbers."""
