"""Two event loops in two threads; the second blocks its loop."""
import asyncio
import threading
import time


async def calm():
    for _ in range(20):
        await asyncio.sleep(0.001)


async def rude():
    await asyncio.sleep(0.01)
    time.sleep(0.05)  # BUG blocking two-loops


def run(coro_fn, name):
    async def main():
        await asyncio.create_task(coro_fn(), name=name)
    asyncio.run(main())


threads = [threading.Thread(target=run, args=(calm, "calm")),
           threading.Thread(target=run, args=(rude, "rude"))]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("two loops ok")
