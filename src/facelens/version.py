"""The version of facelens (one place; the package, the service and reports read it)."""

__all__ = ["__version__"]

__version__ = "0.1.0"
