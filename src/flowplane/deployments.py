"""``flowplane.deployments``: run, describe and register deployments (see :mod:`flowplane.deploy`)."""

from flowplane.deploy.deployments import RunnerDeployment, deploy
from flowplane.deploy.run import arun_deployment, run_deployment

__all__ = ["RunnerDeployment", "arun_deployment", "deploy", "run_deployment"]
