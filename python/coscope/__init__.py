"""coscope for asyncio: every event loop of the process traced into
coscope's segment (/dev/shm/coscope.<pid>), and asyncio's classic bugs
reported with Python stacks.

    import coscope; coscope.install()       # in code
    coscope run -- python3 app.py           # or no code change at all
    COSCOPE=off                             # turns it all off

The hot paths are C (_coscope): Handle._run, the task factory, await
chains.  This file installs them and writes reports (cold paths): to
stderr, as JSON lines into $COSCOPE_REPORT_DIR for `coscope check`, and as
warning records into the segment.
"""
import os
import sys

__all__ = ["install", "installed", "segment"]

_state = {"installed": False, "C": None, "made": {}, "sites": set()}
_MAX_PER_CLASS = 20


def _off():
    return os.environ.get("COSCOPE", "").strip().lower() in ("off", "0", "no")


def installed():
    """True once install() has hooked asyncio."""
    return _state["installed"]


def segment():
    """Path of this process's segment, or None."""
    C = _state["C"]
    return C.segment() if C else None


def _classes_on(C):
    # the classes and their older spellings are the format's
    # (CS_REPORT_CLASS_MAP), as _coscope exports them
    v = os.environ.get("COSCOPE_REPORT", "")
    if v.strip().lower() in ("off", "none", "0"):
        return set()
    if not v.strip() or v.strip() == "all":
        return set(C.REPORT_CLASSES)
    on = set()
    for name in v.split(","):
        name = name.strip()
        on.add(C.REPORT_ALIASES.get(name, name))
    return on


# ---- reports ---------------------------------------------------------------

def _stdlib_dir():
    return os.path.dirname(os.__file__) + os.sep


def _frame(file, line, func):
    lib = file.startswith(_STD) or file.startswith("<frozen")
    return {"file": file, "line": int(line or 0), "function": func,
            "library": lib}


def _report_file_write(rdir, name, line, flags):
    """Writes line to rdir/name (created 0600; flags: how it is opened
    besides), in one write(2); a report file that cannot be written is
    skipped, as the C agent skips it."""
    try:
        fd = os.open(os.path.join(rdir, name),
                     os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | flags, 0o600)
        try:
            os.write(fd, line.encode("utf-8", "replace"))
        finally:
            os.close(fd)
    except OSError:
        pass


def _emit(cls, headline, task, frames, details=()):
    """One report: stderr, the JSON line for check, a warning record."""
    if cls not in _ON:
        return
    made = _state["made"]
    made[cls] = made.get(cls, 0) + 1
    if made[cls] > _MAX_PER_CLASS:
        return
    name = _task_name(task)
    lines = ["coscope: " + headline]
    lines += ["  " + d for d in details]
    for i, f in enumerate(frames):
        lines.append("    #%-2d %s:%d in %s" % (i, f["file"], f["line"],
                                               f["function"]))
    if not frames:
        lines.append("    (no stack)")
    text = "\n".join(lines) + "\n"
    # under `coscope check` (COSCOPE_REPORT_STDERR=off) check prints it
    if os.environ.get("COSCOPE_REPORT_STDERR", "").lower() != "off":
        try:
            os.write(2, text.encode("utf-8", "replace"))
        except OSError:
            pass
    C = _state["C"]
    kind = C.REPORT_CLASSES[cls]
    stack = "\n".join("%s:%d in %s" % (f["file"], f["line"], f["function"])
                      for f in frames)
    try:
        C.warn(kind, task if task is not None else None,
               headline + ("\n" + stack if stack else ""))
    except Exception:
        pass
    rdir = os.environ.get("COSCOPE_REPORT_DIR")
    if rdir:
        import json
        js = {"class": cls, "headline": headline, "task": name,
              "pid": os.getpid(),
              "frames": [dict(ip=None, **f) for f in frames[:64]]}
        line = json.dumps(js, separators=(",", ":")) + "\n"
        _report_file_write(rdir, "%d.jsonl" % os.getpid(), line,
                           os.O_APPEND)
    if os.environ.get("COSCOPE_STRICT") == "1":
        os.write(2, b"  COSCOPE_STRICT=1: aborting at the first report\n")
        os.abort()


def _task_name(task):
    if task is None:
        return None
    try:
        return str(task.get_name())
    except Exception:
        return None


def _label(task):
    n = _task_name(task)
    return "task '%s'" % n if n is not None else "a callback"


def _tb_frames(tb):
    """Frames of a traceback, innermost first."""
    out = []
    while tb is not None:
        c = tb.tb_frame.f_code
        out.append(_frame(c.co_filename, tb.tb_lineno, c.co_qualname
                          if hasattr(c, "co_qualname") else c.co_name))
        tb = tb.tb_next
    out.reverse()
    return out


def _chain_frames(coro):
    """The await chain of a suspended coroutine, innermost first."""
    out = []
    seen = 0
    while coro is not None and seen < 64:
        seen += 1
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            break
        c = frame.f_code
        out.append(_frame(c.co_filename, frame.f_lineno,
                          getattr(c, "co_qualname", c.co_name)))
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    out.reverse()
    return out


def _sample_frames(text):
    """faulthandler's dump ('  File "f", line N in func'), innermost first."""
    frames = []
    for ln in (text or "").splitlines():
        ln = ln.strip()
        if not ln.startswith('File "'):
            continue
        try:
            file, rest = ln[6:].split('", line ', 1)
            num, func = rest.split(" in ", 1)
            frames.append(_frame(file, int(num), func))
        except ValueError:
            continue
    return frames


def _report(kind, *a):
    """Called by _coscope for the classes it detects in C."""
    try:
        if kind == "slow":
            task, cb, secs, sample = a
            what = _label(task) if task is not None else _callback_name(cb)
            frames = _sample_frames(sample)
            details = [] if frames else [
                "(no stack: the step ended before the watchdog sampled it)"]
            if frames:
                details = ["Python stack sampled while the step ran:"]
            _emit("slow", "Executing %s took %.3f seconds" % (what, secs),
                  task, frames, details)
        elif kind == "blocking":
            call, ms, task, stack = a
            frames = [_frame(f, l, fn) for (f, l, fn) in stack]
            if _allowed(frames):
                return
            key = (call, frames[0]["file"], frames[0]["line"]) if frames else (call,)
            if key in _state["sites"]:
                return
            _state["sites"].add(key)
            details = []
            user = next((f for f in frames if not f["library"]), None)
            if user:
                import linecache
                src = linecache.getline(user["file"], user["line"]).strip()
                if src:
                    details.append("at %s:%d: %s" % (user["file"], user["line"], src))
            pyname = _python_call(call, frames)
            if pyname != call:
                details.insert(0, "(the C call: %s)" % call)
            _emit("blocking", "blocking call %s() on the event loop in %s "
                  "(took %.1f ms)" % (pyname, _label(task), ms), task, frames,
                  details)
        elif kind == "deadlock":
            (tasks,) = a
            names = " -> ".join("'%s'" % _task_name(t) for t in tasks)
            frames = _chain_frames(tasks[0].get_coro()) if tasks else []
            details = []
            for t in tasks:
                fr = _chain_frames(t.get_coro())
                where = ("%s:%d in %s" % (fr[0]["file"], fr[0]["line"],
                                          fr[0]["function"]) if fr else "?")
                details.append("task '%s' awaits the next one at %s"
                               % (_task_name(t), where))
            _emit("deadlock", "deadlock: tasks await each other in a cycle: "
                  "%s -> '%s'" % (names, _task_name(tasks[0])),
                  tasks[0] if tasks else None, frames, details)
    except Exception as e:  # a report must never break the program
        try:
            os.write(2, ("coscope: report failed: %r\n" % (e,)).encode())
        except OSError:
            pass


# The Python function a blocking C call most likely came from.
_PY_CALLS = {
    "clock_nanosleep": "time.sleep", "nanosleep": "time.sleep",
    "sleep": "time.sleep", "usleep": "time.sleep", "fsync": "os.fsync",
    "fdatasync": "os.fdatasync", "recv": "socket.recv",
    "recvfrom": "socket.recvfrom", "send": "socket.send",
    "sendto": "socket.sendto", "connect": "socket.connect",
    "accept": "socket.accept", "getaddrinfo": "socket.getaddrinfo",
    "gethostbyname": "socket.gethostbyname", "flock": "fcntl.flock",
    "sem_wait": "threading.Lock.acquire", "read": "os.read",
    "write": "os.write", "waitpid": "os.waitpid", "wait": "os.wait",
    "system": "os.system", "popen": "os.popen", "poll": "select.poll",
    "select": "select.select", "epoll_wait": "select.epoll.poll",
    "pthread_join": "threading.Thread.join",
}


def _python_call(call, frames):
    """'subprocess.run' when the call came through subprocess, else the
    Python function that makes that C call."""
    for f in reversed(frames):  # outermost first: the API the user called
        base = os.path.basename(f["file"])
        if f["library"] and base in ("subprocess.py", "socket.py", "ssl.py"):
            mod = base[:-3]
            return "%s.%s" % (mod, f["function"].rsplit(".", 1)[-1])
    return _PY_CALLS.get(call, call)


# Library functions whose short waits are part of how they work, not a
# finding: starting a thread waits for it to say it runs (to_thread and
# run_in_executor start their workers so).
_ALLOW_DEFAULT = {"Thread.start"}


def _allow_list():
    names = set(_ALLOW_DEFAULT)
    path = os.environ.get("COSCOPE_ALLOW")
    if path:
        try:
            with open(path) as f:
                for ln in f:
                    ln = ln.split("#", 1)[0].strip()
                    if ln:
                        names.add(ln)
        except OSError as e:
            os.write(2, ("coscope: cannot open '%s' (COSCOPE_ALLOW): %s\n"
                         % (path, e.strerror)).encode())
    return names


def _allowed(frames):
    """True if a frame is a function of the allow list (COSCOPE_ALLOW)."""
    allow = _state.get("allow")
    if allow is None:
        allow = _state["allow"] = _allow_list()
    return any(f["function"] in allow or
               f["function"].rsplit(".", 1)[-1] in allow for f in frames)


def _callback_name(cb):
    try:
        from asyncio import format_helpers
        return "callback " + format_helpers._format_callback_source(cb, ())
    except Exception:
        return "a callback"


def _on_handle_error(handle, exc):
    """What asyncio's Handle._run does with a callback's exception."""
    from asyncio import format_helpers
    cb = format_helpers._format_callback_source(handle._callback, handle._args)
    context = {"message": "Exception in callback %s" % cb,
               "exception": exc, "handle": handle}
    if handle._source_traceback:
        context["source_traceback"] = handle._source_traceback
    handle._loop.call_exception_handler(context)


def _from_context(loop, context):
    msg = context.get("message", "")
    if msg.startswith("Task exception was never retrieved") or \
            msg.startswith("Future exception was never retrieved"):
        fut = context.get("future")
        exc = context.get("exception")
        frames = _tb_frames(getattr(exc, "__traceback__", None))
        task = fut if hasattr(fut, "get_name") else None
        details = ["%s: %s" % (type(exc).__name__, exc)] if exc else []
        _emit("unretrieved", "%s exception was never retrieved%s"
              % ("Task" if task else "Future",
                 " (task '%s')" % _task_name(task) if task else ""),
              task, frames, details)
    elif msg.startswith("Task was destroyed but it is pending"):
        task = context.get("task")
        coro = task.get_coro() if task is not None else None
        frames = _chain_frames(coro)
        info = _state["C"].row_info(task) if task is not None else None
        details = []
        if info and info[1]:
            details.append("created at %s" % info[1])
        if not frames and info:  # the coroutine is closed: what was published
            frames = [_frame(*_split_loc(s)) for s in info[2]]
        if frames:
            details.append("it was suspended at:")
        _emit("pending", "Task was destroyed but it is pending! (task '%s')"
              % _task_name(task), task, frames, details)


def _split_loc(text):
    """'file:line in function' -> (file, line, function)."""
    where, _, func = text.partition(" in ")
    file, _, line = where.rpartition(":")
    try:
        return file, int(line), func
    except ValueError:
        return where, 0, func


def _never_awaited(coro):
    # called from C (_coscope.tee): the frame below is the code running
    # when the coroutine was dropped - where `fetch()` without await is
    name = getattr(coro, "__qualname__", None) or repr(coro)
    origin = getattr(coro, "cr_origin", None)
    if origin:
        frames = [_frame(f, l, fn) for (f, l, fn) in origin]
        details = ["created at %s:%d in %s" % tuple(origin[0])]
    else:
        frames = []
        f = sys._getframe(1)
        while f is not None and len(frames) < 64:
            c = f.f_code
            frames.append(_frame(c.co_filename, f.f_lineno,
                                 getattr(c, "co_qualname", c.co_name)))
            f = f.f_back
        details = ["dropped at %s:%d in %s (COSCOPE_PY_ORIGIN=1 for the "
                   "creation site)" % (frames[0]["file"], frames[0]["line"],
                                       frames[0]["function"])] if frames else []
    _emit("never-awaited", "coroutine '%s' was never awaited" % name, None,
          frames, details)


# ---- lock cycles (under check) ------------------------------------------------

def _patch_locks(asyncio):
    """asyncio.Lock has no owner: under `coscope check` (COSCOPE_PY_LOCKS)
    acquire/release note who holds and who waits for each lock, and a
    task about to wait for a lock follows holder -> awaited lock -> holder
    to find a cycle (or itself: a second acquire of a non-reentrant lock).
    Off by default elsewhere: it costs a coroutine layer per acquire."""
    import weakref
    Lock = asyncio.locks.Lock
    if getattr(Lock, "_coscope_patched", False):
        return
    owner = weakref.WeakKeyDictionary()    # lock -> task holding it
    waiting = weakref.WeakKeyDictionary()  # task -> lock it waits for
    orig_acquire, orig_release = Lock.acquire, Lock.release

    def cycle(me, lock):
        path, seen = [], set()
        while lock is not None and id(lock) not in seen:
            seen.add(id(lock))
            holder = owner.get(lock)
            if holder is None:
                return None
            path.append((holder, lock))
            if holder is me:
                return path
            lock = waiting.get(holder)
        return None

    async def acquire(self):
        me = asyncio.current_task()
        if me is not None and self._locked:
            path = cycle(me, self)
            if path:
                _lock_cycle(me, self, path)
            waiting[me] = self
            try:
                await orig_acquire(self)
            finally:
                waiting.pop(me, None)
        else:
            await orig_acquire(self)
        if me is not None:
            owner[self] = me
        return True

    def release(self):
        owner.pop(self, None)
        orig_release(self)

    acquire.__qualname__ = "Lock.acquire"
    Lock.acquire, Lock.release = acquire, release
    Lock._coscope_patched = True


def _lock_cycle(me, lock, path):
    frames = []
    f = sys._getframe(2)  # the caller of acquire (through __aenter__)
    while f is not None and len(frames) < 64:
        c = f.f_code
        frames.append(_frame(c.co_filename, f.f_lineno,
                             getattr(c, "co_qualname", c.co_name)))
        f = f.f_back
    frames = [x for x in frames if not x["file"].endswith("coscope/__init__.py")]
    details = ["task '%s' waits for lock 0x%x held by task '%s'"
               % (_task_name(me if i == 0 else path[i - 1][0]), id(l),
                  _task_name(h)) for i, (h, l) in enumerate(path)]
    if len(path) == 1:
        head = ("deadlock: task '%s' waits for a lock it holds itself"
                % _task_name(me))
    else:
        head = ("deadlock: tasks wait for each other's locks in a cycle: %s"
                % " -> ".join("'%s'" % _task_name(t)
                              for t in [me] + [h for h, _ in path]))
    _emit("deadlock", head, me, frames, details)


# ---- installing --------------------------------------------------------------

def _patch_loops(asyncio, C):
    base = asyncio.base_events.BaseEventLoop
    if getattr(base, "_coscope_patched", False):
        return
    orig_init = base.__init__
    orig_set = base.set_task_factory
    orig_get = base.get_task_factory
    orig_ceh = base.call_exception_handler

    def __init__(self, *a, **kw):
        orig_init(self, *a, **kw)
        self._task_factory = C.TaskFactory(self._task_factory)

    def set_task_factory(self, factory):
        orig_set(self, factory)
        self._task_factory = C.TaskFactory(factory)

    def get_task_factory(self):
        f = orig_get(self)
        return f.inner if isinstance(f, C.TaskFactory) else f

    def call_exception_handler(self, context):
        try:
            _from_context(self, context)
        except Exception:
            pass
        return orig_ceh(self, context)

    sel_loop = asyncio.selector_events.BaseSelectorEventLoop
    orig_sel_init = sel_loop.__init__

    def sel_init(self, *a, **kw):  # the selector comes after base's init
        orig_sel_init(self, *a, **kw)
        sel = getattr(self, "_selector", None)
        if sel is not None and callable(getattr(sel, "select", None)):
            try:  # one loop-iteration record per select: `top`'s busy %
                sel.select = C.timed_select(sel.select)
            except AttributeError:  # a selector with __slots__
                pass

    sel_loop.__init__ = sel_init
    if (3, 13, 0) <= sys.version_info[:3] < (3, 13, 3):
        # 3.13.0-3.13.2 name every unnamed task "None" once a task factory
        # is set (CPython gh-130033: create_task calls set_name(name) even
        # for None), and ours always is: where the program set none, do
        # what create_task does without a factory (the name given, else
        # "Task-N"); a factory of the program's own keeps 3.13's way
        orig_create = base.create_task

        def create_task(self, coro, *, name=None, context=None):
            f = self._task_factory
            if type(f) is not C.TaskFactory or f.inner is not None:
                return orig_create(self, coro, name=name, context=context)
            self._check_closed()
            task = f(self, coro, name=name, context=context)
            if task._source_traceback:
                del task._source_traceback[-1]
            return task

        base.create_task = create_task
    base.__init__ = __init__
    base.set_task_factory = set_task_factory
    base.get_task_factory = get_task_factory
    base.call_exception_handler = call_exception_handler
    base._coscope_patched = True
    try:
        loop = asyncio.get_running_loop()
        if not isinstance(loop._task_factory, C.TaskFactory):
            loop._task_factory = C.TaskFactory(loop._task_factory)
    except (RuntimeError, AttributeError):
        pass


def install():
    """Hooks every asyncio event loop of this process (idempotent).
    Returns True if coscope is on, False under COSCOPE=off."""
    if _off():
        return False
    if _state["installed"]:
        return True
    global _ON, _STD
    from . import _coscope as C
    _ON = _classes_on(C)
    _STD = _stdlib_dir()
    import asyncio
    import asyncio.base_events
    import asyncio.events
    import asyncio.selector_events
    import json  # noqa: F401  (reports made at shutdown cannot import)
    import linecache  # noqa: F401
    import warnings
    _state["C"] = C
    try:
        slow = float(os.environ.get("COSCOPE_SLOW_MS", "100"))
    except ValueError:
        slow = 100.0
    C.start(slow)
    C.set_reporter(_report)
    asyncio.events.Handle._run = C.handle_run(asyncio.events.Handle,
                                              _on_handle_error)
    _patch_loops(asyncio, C)
    orig_warn = getattr(warnings, "_warn_unawaited_coroutine", None)
    if orig_warn is not None and not getattr(orig_warn, "_coscope", False):
        warnings._warn_unawaited_coroutine = C.tee(_never_awaited, orig_warn)
    # origin tracking costs ~9% on a create_task + gather burst (bench/
    # py_cost.py): on by default under `coscope check` only
    try:
        depth = int(os.environ.get("COSCOPE_PY_ORIGIN",
                                   "1" if os.environ.get("COSCOPE_REPORT_DIR") else "0"))
    except ValueError:
        depth = 0
    if depth > 0 and sys.get_coroutine_origin_tracking_depth() < depth:
        sys.set_coroutine_origin_tracking_depth(depth)
    if os.environ.get("COSCOPE_PY_LOCKS",
                      "1" if os.environ.get("COSCOPE_REPORT_DIR") else "0") == "1":
        _patch_locks(asyncio)
    reached = C.blocking_register()
    C.watchdog_start()
    _state["installed"] = True
    _hello(bool(_ON), bool(reached))
    return True


def _hello(agent, interposer):
    """Tells `coscope check` this process was seen, as the C agent does:
    $COSCOPE_REPORT_DIR/<pid>.agent, one JSON line."""
    rdir = os.environ.get("COSCOPE_REPORT_DIR")
    if not rdir:
        return
    import json
    line = json.dumps({"pid": os.getpid(), "exe": sys.executable,
                       "agent": agent, "interposer": interposer},
                      separators=(",", ":")) + "\n"
    _report_file_write(rdir, "%d.agent" % os.getpid(), line,
                       os.O_TRUNC | os.O_NOFOLLOW)


class _AsyncioFinder:
    """Installs coscope right after asyncio is first imported, so that a
    program that never uses asyncio pays nothing at start-up."""

    def find_spec(self, name, path=None, target=None):
        if name != "asyncio":
            return None
        import importlib.machinery
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        real_exec = loader.exec_module

        def exec_module(module):
            real_exec(module)
            try:
                install()
            except Exception as e:
                os.write(2, ("coscope: not installed: %s\n" % e).encode())
        loader.exec_module = exec_module
        return spec


def _boot():
    """From sitecustomize (coscope run/check): install when asyncio comes."""
    if _off():
        return
    if "asyncio" in sys.modules:
        install()
    else:
        sys.meta_path.insert(0, _AsyncioFinder())
