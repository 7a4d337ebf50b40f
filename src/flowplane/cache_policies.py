"""Cache policies (``INPUTS``, ``TASK_SOURCE``, ``FLOW_PARAMETERS``, ``RUN_ID``, ``NO_CACHE``, ``DEFAULT``), as in ``prefect.cache_policies``."""

from flowplane.sdk.cache_policies import (
    DEFAULT,
    FLOW_PARAMETERS,
    INPUTS,
    NO_CACHE,
    NONE,
    RUN_ID,
    TASK_SOURCE,
    CacheKeyFnPolicy,
    CachePolicy,
    CompoundCachePolicy,
    FlowParameters,
    Inputs,
    NoCache,
    RunId,
    TaskSource,
)

__all__ = [
    "CachePolicy",
    "CacheKeyFnPolicy",
    "CompoundCachePolicy",
    "Inputs",
    "TaskSource",
    "FlowParameters",
    "RunId",
    "NoCache",
    "INPUTS",
    "TASK_SOURCE",
    "FLOW_PARAMETERS",
    "RUN_ID",
    "NO_CACHE",
    "NONE",
    "DEFAULT",
]
