"""Deploys tests/compat/flows/hello_project with the real Prefect client's from_source(...).deploy(...).

Usage: python deploy_hello.py SOURCE_DIR DEPLOYMENT_NAME WORK_POOL
"""

import sys

from prefect import flow

source, name, pool = sys.argv[1:4]
deployment_id = flow.from_source(source=source, entrypoint="hello_flow.py:hello").deploy(
    name=name,
    work_pool_name=pool,
    parameters={"name": "compat"},
    cron="0 3 * * *",
)
print("DEPLOYMENT-ID", deployment_id)
