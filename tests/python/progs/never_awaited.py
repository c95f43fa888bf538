"""Bug: a coroutine called and never awaited."""
import asyncio


async def fetch(n):
    await asyncio.sleep(0)
    return n


async def main():
    fetch(1)  # BUG never-awaited
    await asyncio.sleep(0)

asyncio.run(main())
