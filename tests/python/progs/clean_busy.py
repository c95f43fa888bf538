"""A busy asyncio program with no bug: TCP echo, a queue, locks, sleeps,
gathers, cancellation, to_thread, two loops in a row."""
import asyncio


async def echo(reader, writer):
    while data := await reader.read(100):
        writer.write(data)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


async def client(port, n):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    for i in range(n):
        w.write(b"ping %d\n" % i)
        await w.drain()
        assert (await r.readline()) == b"ping %d\n" % i
    w.close()
    await w.wait_closed()


async def producer(q, n):
    for i in range(n):
        await q.put(i)
    await q.put(None)


async def consumer(q, lock, out):
    while (item := await q.get()) is not None:
        async with lock:
            out.append(item)


async def main():
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    q = asyncio.Queue(maxsize=4)
    out = []
    await asyncio.gather(*(client(port, 50) for _ in range(10)),
                         producer(q, 500), consumer(q, asyncio.Lock(), out))
    sleeper = asyncio.create_task(asyncio.sleep(10))
    await asyncio.sleep(0.01)
    sleeper.cancel()
    try:
        await sleeper
    except asyncio.CancelledError:
        pass
    assert sum(await asyncio.gather(*(asyncio.to_thread(pow, 2, i) for i in range(8)))) == 255
    server.close()
    await server.wait_closed()
    assert len(out) == 500
    print("clean ok")

asyncio.run(main())
asyncio.run(asyncio.sleep(0))
