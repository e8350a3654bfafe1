"""A function for tasks created through the API by the benchmarks (``bench/due.py``)."""


async def noop() -> None:
    return None
