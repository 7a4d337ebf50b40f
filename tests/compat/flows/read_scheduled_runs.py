"""Reads a deployment's runs with the real Prefect client and prints what it parsed, as JSON.

Usage: python read_scheduled_runs.py DEPLOYMENT_ID
"""

import asyncio
import json
import sys
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId


async def main(deployment_id: str) -> None:
    async with get_client() as client:
        runs = await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[UUID(deployment_id)]))
        )
    print(
        json.dumps(
            [
                {
                    "state": run.state.name if run.state else None,
                    "auto_scheduled": run.auto_scheduled,
                    "expected_start_time": run.expected_start_time.isoformat(),
                    "tags": run.tags,
                    "created_by": run.created_by.type if run.created_by else None,
                    "work_pool_name": run.work_pool_name,
                    "parameters": run.parameters,
                }
                for run in runs
            ]
        )
    )


asyncio.run(main(sys.argv[1]))
