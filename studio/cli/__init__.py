"""The `studio` command line: drives engine operations, never imports the UI."""
