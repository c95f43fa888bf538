"""Bug: two tasks take two locks in opposite orders."""
import asyncio


async def transfer(first, second, ready, go):
    async with first:
        ready.release()
        await go.wait()
        async with second:  # BUG deadlock locks
            pass


async def main():
    a, b = asyncio.Lock(), asyncio.Lock()
    ready, go = asyncio.Semaphore(0), asyncio.Event()
    t1 = asyncio.create_task(transfer(a, b, ready, go), name="ab")
    t2 = asyncio.create_task(transfer(b, a, ready, go), name="ba")
    await ready.acquire()
    await ready.acquire()
    go.set()
    done, pending = await asyncio.wait([t1, t2], timeout=0.3)
    for t in pending:
        t.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    print("stuck:", len(pending))

asyncio.run(main())
