"""Bug: two tasks that await each other.  (asyncio itself cannot cancel
such a cycle - Task.cancel recurses - so the loop is left with them
pending once main has waited long enough.)"""
import asyncio

tasks = {}


async def worker(me, other):
    await asyncio.sleep(0)
    await tasks[other]  # BUG deadlock


async def main():
    tasks["a"] = asyncio.create_task(worker("a", "b"), name="a")
    tasks["b"] = asyncio.create_task(worker("b", "a"), name="b")
    done, pending = await asyncio.wait(list(tasks.values()), timeout=0.3)
    print("stuck:", len(pending), flush=True)

loop = asyncio.new_event_loop()
loop.run_until_complete(main())
loop.close()
