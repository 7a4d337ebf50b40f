"""flowplane: workflow orchestration for Python, speaking Prefect's API with a fraction of its overhead."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
