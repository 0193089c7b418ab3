"""The `restore` command line (thin over restore.api)."""
