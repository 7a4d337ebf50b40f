"""A flow the real Prefect worker runs from a deployment on our server."""

from prefect import flow, get_run_logger


@flow
def hello(name: str = "world", n: int = 1) -> str:
    get_run_logger().info("hello %s x%s", name, n)
    return f"hello {name} x{n}"
