"""Serves a flow with the real Prefect client's ``flow.serve()``.

Usage: python serve_hello.py DEPLOYMENT_NAME
"""

import sys
import time

from prefect import flow


@flow(log_prints=True)
def served_hello(name: str = "world", seconds: float = 0):
    time.sleep(seconds)
    print(f"served hello {name}")
    return name


if __name__ == "__main__":
    served_hello.serve(name=sys.argv[1], parameters={"name": "compat"})
