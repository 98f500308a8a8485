"""Studio: an offline AI photo studio for photographers."""

__version__ = "0.1.0"
