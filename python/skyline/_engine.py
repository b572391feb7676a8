"""The engine: the Go ``skyline`` binary as a child process (``skyline engine``).

One :class:`Engine` serves one group (an :class:`~skyline.RTSPServer` and its
streams, or one :class:`~skyline.KVSSkyLine`). Control messages are JSON lines
on the child's stdin/stdout; frames cross in a shared-memory ring of slots
(:class:`Ring`), so put() copies a frame once and sends a ~40-byte line. The
protocol is documented in ``cmd/skyline/engine.go``.

The child ends with us: it exits when its stdin reaches EOF (we closed it,
or this process died) or when its parent changes.
"""

import itertools
import json
import logging
import mmap
import os
import shutil
import signal
import struct
import subprocess
import threading
import time
import weakref
import atexit

import numpy as np

ENV_BIN = "SKYLINE_BIN"
"""Environment variable naming the ``skyline`` binary (else it is looked up on PATH)."""

RING_MAGIC = b"SKYRING1"
RING_HEADER = 64
SLOT_HEADER = 64
FORMAT_BGR, FORMAT_GRAY, FORMAT_BGRA = 1, 2, 3

_SLOT_HDR = struct.Struct("<IIIIIIQQq")  # state, format, w, h, stride, pad, size, seq, capture ns


class EngineError(RuntimeError):
    """The engine could not be started or answered with an error."""


def find_binary(explicit=None):
    """Returns the path of the ``skyline`` binary: ``explicit``, else
    ``$SKYLINE_BIN``, else ``skyline`` on PATH.

    Raises:
        EngineError: none of them names an executable file.
    """
    for cand, why in ((explicit, "argument skyline_bin"), (os.environ.get(ENV_BIN), "$" + ENV_BIN)):
        if cand:
            path = shutil.which(cand) if os.sep not in cand else cand
            if path and os.path.isfile(path) and os.access(path, os.X_OK):
                return path
            raise EngineError("skyline binary %r (from %s) not found or not executable" % (cand, why))
    path = shutil.which("skyline")
    if not path:
        raise EngineError("skyline binary not found: install it on PATH (go install "
                          "github.com/skyline-go/skyline/cmd/skyline@latest) or set $" + ENV_BIN)
    return path


class Ring:
    """A ring of frame slots in a file under /dev/shm, mapped by us and the engine.

    Args:
        slots: number of slots (frames in flight), 1..64.
        slot_size: bytes of pixels per slot (rounded up to 64).

    Raises:
        EngineError: the ring does not fit in /dev/shm.
    """

    _counter = itertools.count(1)

    def __init__(self, slots, slot_size):
        self.slots = slots
        self.slot_size = (slot_size + 63) // 64 * 64
        self.stride = SLOT_HEADER + self.slot_size
        size = RING_HEADER + slots * self.stride
        base = "/dev/shm" if os.path.isdir("/dev/shm") else "/tmp"
        self.path = os.path.join(base, "skyline-%d-%d" % (os.getpid(), next(Ring._counter)))
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, size)
            try:
                # reserve the pages now: writing into a sparse shared file past
                # the filesystem's room (/dev/shm is 64 MB in a default Docker
                # container) is SIGBUS, for us and the engine
                os.posix_fallocate(fd, 0, size)
            except OSError as e:
                free = shutil.disk_usage(base).free
                raise EngineError("ring of %d slots of %d bytes (%.1f MB) does not fit in %s (%.1f MB free): %s; "
                                  "use fewer ring_slots, smaller frames or a larger %s (docker run --shm-size)"
                                  % (slots, self.slot_size, size / 1e6, base, free / 1e6, e.strerror, base)) from None
            self.mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except BaseException:
            os.unlink(self.path)
            raise
        finally:
            os.close(fd)
        struct.pack_into("<8sIIQ", self.mm, 0, RING_MAGIC, 1, slots, self.slot_size)
        self.states = np.ndarray((slots,), dtype=np.uint32, buffer=self.mm, offset=RING_HEADER,
                                 strides=(self.stride,))
        self.next = 0
        self.seq = 0

    def free(self):
        """True when the next slot may be written."""
        return self.states[self.next] == 0

    def data(self, i, nbytes):
        """The pixel bytes of slot i as a uint8 array of nbytes."""
        off = RING_HEADER + i * self.stride + SLOT_HEADER
        return np.ndarray((nbytes,), dtype=np.uint8, buffer=self.mm, offset=off)

    def publish(self, i, fmt, w, h, stride, size, capture_ns):
        """Fills slot i's header; state=1 is written last."""
        off = RING_HEADER + i * self.stride
        self.seq += 1
        _SLOT_HDR.pack_into(self.mm, off, 0, fmt, w, h, stride, 0, size, self.seq, capture_ns)
        self.states[i] = 1

    def unlink(self):
        try:
            os.unlink(self.path)
        except OSError:
            pass


_engines = weakref.WeakSet()


@atexit.register
def _close_all():
    for e in list(_engines):
        e.close()


class Engine:
    """One ``skyline engine`` child process and its protocol.

    Args:
        skyline_bin: path or name of the binary (else $SKYLINE_BIN, else PATH).
        logger: where the engine's log lines go.
    """

    REQUEST_TIMEOUT = 20.0
    """Seconds a request may take (Start is bounded by 15 s in the engine)."""

    def __init__(self, skyline_bin=None, logger=None):
        self.skyline_bin = skyline_bin
        self.logger = logger or logging.getLogger("skyline.engine")
        self._lock = threading.Lock()  # guards the process, the pending replies and stdin writes
        self._proc = None
        self._pending = {}
        self._ids = itertools.count(1)
        self._listeners = {}  # stream id -> callable(event dict)
        self._on_death = []  # callables(reason)
        self._last_error = ""
        self._stderr_tail = []
        self.last_exit = None
        self.replay = []  # requests sent again after a restart, in order
        self._closed = False
        _engines.add(self)

    # process lifetime

    @property
    def pid(self):
        p = self._proc
        return p.pid if p else None

    def alive(self):
        p = self._proc
        return p is not None and p.poll() is None and not getattr(p, "_skyline_dead", False)

    def ensure(self):
        """Starts the child when it is not running and replays the group's
        requests (server, streams). Raises EngineError with the reason."""
        if self.alive():
            return False
        with self._lock:
            if self._closed:
                raise EngineError("engine closed")
            p = self._proc
            if p is not None and p.poll() is None and not getattr(p, "_skyline_dead", False):
                return False  # another thread started it
            path = find_binary(self.skyline_bin)
            args = [path, "engine", "--log-level", _go_level(self.logger)]
            # The .env chosen by the SkyLine (dotenv_path) is already applied
            # to os.environ; the engine is a new process, so its loader sees
            # LD_* as they are: it must not look for another .env and re-exec.
            env = dict(os.environ, SKYLINE_REEXEC="1")
            try:
                proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, close_fds=True, env=env,
                                        start_new_session=True)
            except OSError as e:
                raise EngineError("cannot start %s: %s" % (path, e)) from e
            self._proc = proc
            self._stderr_tail = []
            err = threading.Thread(target=self._read_stderr, args=(proc,), daemon=True,
                                   name="skyline-engine-err")
            err.start()
            threading.Thread(target=self._read_stdout, args=(proc, err), daemon=True,
                             name="skyline-engine-out").start()
        self.logger.info("skyline engine started: %s (pid %d)", path, proc.pid)
        try:
            self.request({"op": "hello"})
            for msg in list(self.replay):
                self.request(dict(msg))
        except EngineError as e:
            # half set up: end it, so that the next ensure starts afresh
            proc._skyline_expected = str(e)
            proc.kill()
            proc.wait()
            raise
        return True

    def close(self, wait=True):
        """Ends the child: closes its stdin (it finishes its streams cleanly)
        and waits up to 10 s, then kills it. wait=False (a finalizer of a
        collected object) does the waiting on a thread."""
        with self._lock:
            self._closed = True
            proc = self._proc
        if proc is None:
            return
        try:
            proc.stdin.close()
        except OSError:
            pass
        if not wait:
            threading.Thread(target=_reap, args=(proc,), daemon=True, name="skyline-engine-reap").start()
            return
        _reap(proc)

    # protocol

    def request(self, msg, timeout=None):
        """Sends msg with a new id and waits for its reply.

        Returns:
            dict: the reply.
        Raises:
            EngineError: the engine answered an error, died or did not answer in time.
        """
        ev = threading.Event()
        slot = {}
        with self._lock:
            proc = self._proc
            if proc is None or getattr(proc, "_skyline_dead", False):
                raise EngineError(self._last_error or "engine not running")
            rid = next(self._ids)
            msg["id"] = rid
            self._pending[rid] = (ev, slot)
            line = (json.dumps(msg) + "\n").encode()
            try:
                proc.stdin.write(line)
                proc.stdin.flush()
            except (OSError, ValueError):
                # the child is ending: its reader thread completes this
                # request with the reason (exit status, last error) below
                pass
        if not ev.wait(timeout or self.REQUEST_TIMEOUT):
            with self._lock:
                self._pending.pop(rid, None)
            raise EngineError("engine did not answer %s within %.0f s" % (msg.get("op"), timeout or self.REQUEST_TIMEOUT))
        rep = slot.get("reply")
        if rep is None:
            raise EngineError(slot.get("error") or self._last_error or "engine died")
        if not rep.get("ok"):
            raise EngineError(rep.get("error", "engine error"))
        return rep

    def request_async(self, msg, callback):
        """Sends msg; callback(reply or None, error text) runs on the reader
        thread when the reply arrives (or the engine dies). Never waits."""
        with self._lock:
            proc = self._proc
            if proc is None or getattr(proc, "_skyline_dead", False):
                return False
            rid = next(self._ids)
            msg["id"] = rid
            self._pending[rid] = (callback, None)
            try:
                proc.stdin.write((json.dumps(msg) + "\n").encode())
                proc.stdin.flush()
            except (OSError, ValueError):
                self._pending.pop(rid, None)
                return False
        return True

    def send_raw(self, line):
        """Writes a prepared line (a frame doorbell). Returns False when the
        engine is gone."""
        with self._lock:
            proc = self._proc
            if proc is None:
                return False
            try:
                proc.stdin.write(line)
                proc.stdin.flush()
                return True
            except (OSError, ValueError):
                return False

    # Callbacks are held weakly: the reader threads keep the Engine alive
    # while its child runs, and they must not keep the Python objects (an
    # RTSPServer, a SkyLine) alive too, or a dropped object would never end
    # its child (see the finalizers in rtsp.py and kvs.py).

    def listen(self, stream_id, fn):
        self._listeners[stream_id] = _weak(fn)

    def unlisten(self, stream_id):
        self._listeners.pop(stream_id, None)

    def on_death(self, fn):
        self._on_death.append(_weak(fn))

    def off_death(self, fn):
        self._on_death = [r for r in self._on_death if r() not in (None, fn)]

    def _read_stdout(self, proc, stderr_reader):
        for raw in proc.stdout:
            try:
                msg = json.loads(raw)
            except ValueError:
                self.logger.warning("engine: unreadable line %r", raw[:200])
                continue
            self._dispatch(msg)  # a call: no callback stays referenced by this loop
        # EOF: the child ended (or closed stdout).
        code = proc.wait()
        stderr_reader.join(2)  # its last lines are the reason (bounded: a grandchild may hold stderr)
        self._died(proc, code)

    def _dispatch(self, msg):
        if "ev" in msg:
            ref = self._listeners.get(msg.get("stream"))
            fn = ref() if ref else None
            if fn:
                fn(msg)
            return
        with self._lock:
            waiter = self._pending.pop(msg.get("id"), None)
        if waiter is None:
            return
        target, slot = waiter
        if slot is None:
            target(msg, msg.get("error", "") if not msg.get("ok") else "")
        else:
            slot["reply"] = msg
            target.set()

    def _died(self, proc, code):
        if code is not None and code < 0:
            try:
                how = "killed by signal %s" % signal.Signals(-code).name
            except ValueError:
                how = "killed by signal %d" % -code
        else:
            how = "exited with status %s" % code
        reason = "skyline engine (pid %d) %s" % (proc.pid, how)
        tail = [line for line in self._stderr_tail if line]
        if tail and code != 0:
            reason += "; last error: " + tail[-1]
        reason = getattr(proc, "_skyline_expected", None) or reason
        with self._lock:
            proc._skyline_dead = True
            if proc is not self._proc:
                # the end of a process already replaced (its reader thread
                # came late): the new one's requests and streams are not its
                return
            self._last_error = reason
            self.last_exit = code
            pending, self._pending = self._pending, {}
            closed = self._closed
        for target, slot in pending.values():
            if slot is None:
                target(None, reason)
            else:
                slot["error"] = reason
                target.set()
        if not closed:
            self.logger.error("%s", reason)
            for ref in list(self._on_death):
                fn = ref()
                if fn:
                    fn(reason)

    def _read_stderr(self, proc):
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            try:
                rec = json.loads(line)
                level = _PY_LEVEL.get(rec.pop("level", "INFO"), logging.INFO)
                text = rec.pop("msg", "")
                rec.pop("time", None)
                if rec:
                    text += " " + " ".join("%s=%s" % kv for kv in rec.items())
            except (ValueError, AttributeError):
                level, text = logging.WARNING, line
            if level >= logging.WARNING:
                self._stderr_tail = (self._stderr_tail + [text])[-5:]
            self.logger.log(level, "engine: %s", text)


def _weak(fn):
    """A weak reference to a bound method (a strong one to a plain function)."""
    if hasattr(fn, "__self__"):
        return weakref.WeakMethod(fn)
    return lambda: fn


def _reap(proc):
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


_PY_LEVEL = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING, "ERROR": logging.ERROR}


def _go_level(logger):
    lv = logger.getEffectiveLevel()
    if lv <= logging.DEBUG:
        return "debug"
    if lv <= logging.INFO:
        return "info"
    if lv <= logging.WARNING:
        return "warn"
    return "error"

