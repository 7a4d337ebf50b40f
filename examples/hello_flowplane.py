"""Hello, flowplane: a small order-report pipeline showing tasks, mapping, a retry, a subflow and logs.

Run it (recorded in the local database, no server needed):

    flowplane run -p examples/hello_flowplane.py
    flowplane run -p examples/hello_flowplane.py --param currency=USD

Then look at what was recorded:

    flowplane flow-run ls
"""

from __future__ import annotations

from flowplane import flow, get_run_logger, task

#: A day's orders, as a shop's API might return them (prices in US dollars).
ORDERS = [
    {"id": 101, "item": "coffee beans", "quantity": 2, "unit_price": 14.50},
    {"id": 102, "item": "grinder", "quantity": 1, "unit_price": 89.00},
    {"id": 103, "item": "filter papers", "quantity": 5, "unit_price": 3.20},
    {"id": 104, "item": "mug", "quantity": 4, "unit_price": 9.90},
]

#: Calls made to the pretend exchange-rate service in this process.
_rate_calls = {"count": 0}


@task
def fetch_orders(day: str) -> list[dict]:
    """Fetch the day's orders."""
    get_run_logger().info("Fetched %d orders for %s", len(ORDERS), day)
    return ORDERS


@task(retries=2, retry_delay_seconds=1)
def fetch_exchange_rate(currency: str) -> float:
    """Ask a (pretend) rate service for USD -> ``currency``; its first answer is a timeout."""
    _rate_calls["count"] += 1
    if _rate_calls["count"] == 1:
        raise ConnectionError("the rate service timed out")
    rate = {"USD": 1.0, "EUR": 0.92, "GBP": 0.79}.get(currency, 1.0)
    get_run_logger().info("1 USD = %s %s", rate, currency)
    return rate


@task
def order_total(order: dict, rate: float) -> float:
    """One order's total in the report's currency."""
    return round(order["quantity"] * order["unit_price"] * rate, 2)


@flow(log_prints=True)
def write_report(day: str, totals: list[float], currency: str) -> str:
    """A subflow: turn the totals into a short report (its prints become log lines)."""
    report = (
        f"{day}: {len(totals)} orders, {sum(totals):.2f} {currency} (largest {max(totals):.2f})"
    )
    print(report)
    return report


@flow(log_prints=True)
def hello_flowplane(day: str = "2024-06-01", currency: str = "EUR") -> str:
    """Price a day's orders in ``currency`` and report the total."""
    logger = get_run_logger()
    orders = fetch_orders(day)
    rate = fetch_exchange_rate(currency)
    totals = order_total.map(orders, rate=rate).result()
    logger.info("Priced %d orders", len(totals))
    print(f"Totals in {currency}: {totals}")
    return write_report(day, totals, currency)
