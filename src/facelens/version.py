"""The version of facelens (one place; the package, the service and reports read it)."""

__version__ = "0.1.0"
