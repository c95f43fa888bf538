"""Bug: a task destroyed while still pending."""
import asyncio
import gc


async def wait_forever(ev):
    await ev.wait()  # BUG pending


loop = asyncio.new_event_loop()
task = loop.create_task(wait_forever(asyncio.Event()), name="orphan")
loop.run_until_complete(asyncio.sleep(0.01))
loop.close()
del task
gc.collect()
