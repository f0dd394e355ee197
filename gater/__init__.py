"""ExESDB Gater: event-store nodes, the gateway in front of them, the Python client, the CLI
and the console. Subpackages say what they own; this module only carries the version."""

__all__ = ["__version__"]

__version__ = "0.1.0"
