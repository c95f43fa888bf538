"""An ordinary asyncio program with a classic bug, for `make demo`: it
fetches three prices concurrently, but one fetcher calls time.sleep()
(a blocking call) instead of `await asyncio.sleep()`, which freezes every
other task for its duration.  Nothing in it knows about coscope:

    coscope check -- python3 examples/python/prices.py
"""
import asyncio
import time


async def fetch(name, delay):
    await asyncio.sleep(delay)
    return name, 100 + len(name)


async def fetch_slowly(name):
    time.sleep(0.3)  # the bug: blocks the event loop
    return name, 42


async def main():
    t0 = time.monotonic()
    prices = await asyncio.gather(fetch("apples", 0.2), fetch("pears", 0.1),
                                  fetch_slowly("plums"))
    print("prices:", dict(prices), "in %.1f s" % (time.monotonic() - t0))

asyncio.run(main())
