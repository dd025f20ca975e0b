"""Privacy: anonymization of faces in images and video, with a report and an independent check."""

__all__: list[str] = []
