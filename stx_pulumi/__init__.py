"""stx-pulumi: StreamTeX apps on Google Cloud Run, driven by Pulumi."""

__version__ = "0.1.0"
