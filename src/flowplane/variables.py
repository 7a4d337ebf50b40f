"""Variables: named JSON values shared by flows, tasks and deployments (``prefect.variables`` becomes ``flowplane.variables``)."""

from flowplane.sdk.variables import Variable

__all__ = ["Variable"]
