"""``flowplane.runner``: serve deployments from this process (see :mod:`flowplane.deploy.runner`)."""

from flowplane.deploy.runner import Runner, aserve, serve

__all__ = ["Runner", "aserve", "serve"]
