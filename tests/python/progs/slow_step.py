"""Bug: a CPU-bound step that freezes the loop for ~0.3 s."""
import asyncio
import time


def crunch(until):
    x = 0
    while time.monotonic() < until: x += 1  # BUG slow
    return x


async def report():
    await asyncio.sleep(0)
    crunch(time.monotonic() + 0.3)


async def main():
    await asyncio.create_task(report(), name="reporter")

asyncio.run(main())
