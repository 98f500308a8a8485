"""Built-in operations, one module per task; each exposes `ENGINES`."""
