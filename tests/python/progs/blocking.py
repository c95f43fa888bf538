"""Bug: blocking calls on the event loop; the kind is argv[1]."""
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time

KIND = sys.argv[1] if len(sys.argv) > 1 else "sleep"


def block():
    if KIND == "sleep":
        time.sleep(0.05)  # BUG blocking sleep
    elif KIND == "fsync":
        with tempfile.TemporaryFile() as f:
            f.write(b"x")
            os.fsync(f.fileno())  # BUG blocking fsync
    elif KIND == "subprocess":
        subprocess.run(["true"])  # BUG blocking subprocess
    elif KIND == "socket":
        a, b = socket.socketpair()
        with a, b:
            b.settimeout(None)
            threading_send(a)
            b.recv(1)  # BUG blocking socket
    elif KIND == "getaddrinfo":
        socket.getaddrinfo("localhost", 80)  # BUG blocking getaddrinfo


def threading_send(sock):
    import threading
    threading.Timer(0.05, sock.send, (b"x",)).start()


async def handler():
    block()


async def main():
    await asyncio.create_task(handler(), name="handler")

asyncio.run(main())
