"""The service's routes, one module per area."""

__all__: list[str] = []
