""":class:`SkyLine` streams OpenCV frames through SkyLine's engine.

:class:`SkyLine` itself is an abstract base class that you can not instantiate
directly. Use a subclass: :class:`~skyline.KVSSkyLine` sends frames to AWS
Kinesis Video Streams, :class:`~skyline.RTSPSkyLine` serves them with the
built-in RTSP server. Same names and behaviour as ``backpack.skyline``; the
encoding and the destinations run in the Go ``skyline`` binary (the engine),
started as a child process.
"""

import datetime
import enum
import itertools
import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from typing import Optional

import numpy as np

from . import _dotenv
from ._engine import Engine, EngineError, Ring, FORMAT_BGR, FORMAT_BGRA, FORMAT_GRAY

USE_LAST_VALUE = -999
"""Using this value for fps, width or height in :meth:`SkyLine.start_streaming`
reuses the value of the last streaming session (or measures it when there was none)."""

MAX_DIMENSION = 8192
"""Largest frame width or height accepted, in pixels (H.264 level 6.2)."""

MAX_FPS = 1000
"""Highest frame rate accepted, in frames per second."""

_FORMATS = {3: ("BGR", FORMAT_BGR), 4: ("BGRA", FORMAT_BGRA)}


def check_frame(frame):
    """Checks a frame and returns ``(format, height, width, channels)``.

    Accepted: a :class:`numpy.ndarray` of dtype ``uint8`` with shape
    ``(h, w, 3)`` (BGR, the reference), ``(h, w, 4)`` (BGRA, alpha ignored),
    ``(h, w)`` or ``(h, w, 1)`` (gray); 1 <= h, w <= :data:`MAX_DIMENSION`; any
    strides (slices and views are copied once).

    Raises:
        TypeError: frame is None or not a numpy array.
        ValueError: wrong dtype, shape, or size (the message names it).
    """
    if frame is None:
        raise TypeError("frame is None: want a numpy.ndarray of shape (height, width, 3), BGR, uint8")
    if not isinstance(frame, np.ndarray):
        raise TypeError("frame is a %s: want a numpy.ndarray of shape (height, width, 3), BGR, uint8"
                        % type(frame).__name__)
    if frame.dtype != np.uint8:
        raise ValueError("frame dtype %s: want uint8" % frame.dtype)
    shape = frame.shape
    if frame.ndim == 2 or (frame.ndim == 3 and shape[2] == 1):
        fmt, c = FORMAT_GRAY, 1
    elif frame.ndim == 3 and shape[2] in _FORMATS:
        c = shape[2]
        fmt = _FORMATS[c][1]
    else:
        raise ValueError("frame shape %s: want (height, width, 3) BGR, (height, width, 4) BGRA "
                         "or (height, width) gray" % (shape,))
    h, w = shape[0], shape[1]
    if not (1 <= h <= MAX_DIMENSION and 1 <= w <= MAX_DIMENSION):
        raise ValueError("frame shape %s: width and height must be 1..%d" % (shape, MAX_DIMENSION))
    return fmt, h, w, c


def _check_param(name, v, is_fps):
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError("%s %r: want a number, None or USE_LAST_VALUE" % (name, v))
    if is_fps:
        if not (0 < v <= MAX_FPS):
            raise ValueError("fps %r: want 0 < fps <= %d, None or USE_LAST_VALUE" % (v, MAX_FPS))
        return float(v)
    if v != int(v) or not (2 <= v <= MAX_DIMENSION) or int(v) % 2:
        raise ValueError("%s %r: want an even number of pixels 2..%d (the stream is 4:2:0), "
                         "None or USE_LAST_VALUE" % (name, v, MAX_DIMENSION))
    return int(v)


class SkyLine(ABC):
    """Abstract base class for sending OpenCV frames to a destination.

    Once :meth:`start_streaming` has opened the stream, pass each frame to
    :meth:`put` as a :class:`numpy.ndarray` of shape ``(height, width, 3)``,
    BGR channel order, ``numpy.uint8`` (gray ``(height, width)`` and BGRA
    ``(height, width, 4)`` are accepted too).

    fps, width and height are fixed during a session. Give them to
    :meth:`start_streaming`, or let SkyLine measure them: up to
    :attr:`FPS_METER_WARMUP_FRAMES` frames (default 100) are discarded at the
    start while the rate of :meth:`put` calls and the frame size are measured.
    A frame of another size than the stream's is scaled to it.

    The frames are encoded (H.264) and sent by the ``skyline`` binary running
    as a child process (the engine): found by the ``skyline_bin`` argument,
    else ``$SKYLINE_BIN``, else on PATH.

    Args:
        parent_logger: the instance logs through a child of this logger,
            named after the class.
        gst_log_file: sets ``GST_DEBUG_FILE`` (GStreamer's log file) for the engine.
        gst_log_level: sets ``GST_DEBUG`` (e.g. ``"3"``) for the engine.
        dotenv_path: the .env file from which ``GST_PLUGIN_PATH``,
            ``LD_LIBRARY_PATH`` (appended) and ``LD_PRELOAD`` are taken. Default:
            the first .env in the current folder or its parents. They take
            effect in the engine, which is a new process.

    Keyword-only (beyond the original; SkyLine's own options):
        encoder: GStreamer H.264 encoder element (default: the best found).
        bitrate: kbit/s (default: scaled to the picture, 2.5 Mbit/s at 720p30).
        profile: ``"baseline"``, ``"main"`` or ``"high"``.
        preset: x264 speed preset (default ``"superfast"``).
        keyframe_interval: seconds between keyframes (default 2).
        encoder_properties: extra encoder properties, ``{"threads": "2"}``.
        queue_size: frames waiting for the encoder in the engine (default 8).
        drop: ``"newest"`` (default: a frame the engine cannot take is refused)
            or ``"oldest"``.
        timestamps: ``"capture"`` (default: the capture time given to put, else
            the time of the put call) or ``"fixed"`` (frame n at n/fps).
        outputs: extra destinations of the same encode, as ``skyline serve
            --out`` takes them: ``"file:rec.mp4"``, ``"rtmp://..."``, ``"kvs://REGION/STREAM"``.
        web: serve the stream to browsers (WebRTC page and WHEP) at this
            address, e.g. ``"127.0.0.1:8889"``.
        ring_slots: frames in flight between put and the engine (default 4).
        skyline_bin: the engine binary.

    Attributes:
        video_width (int): width of the frames in the stream, in pixels.
        video_height (int): height of the frames in the stream, in pixels.
        video_fps (float): frames per second of the stream.
        logger (logging.Logger): the logger instance.
        error (str): the last error (the reason for the ERROR state), or None.
    """

    FPS_METER_WARMUP_FRAMES = 100
    """Frames measured (and discarded) by a warm-up."""

    ERROR_LOG_INTERVAL = 60.0
    """Seconds between two warnings of put() in the ERROR state."""

    class State(enum.Enum):
        """States of the :class:`SkyLine`.

        Attributes:
            STOPPED: stopped; put returns False.
            START_WARMUP: about to start the warm-up (the next put begins it).
            WARMUP: measuring frame rate and frame size.
            STREAMING: streaming; put should be called regularly.
            ERROR: the stream could not open or failed (see :attr:`SkyLine.error`).
        """
        STOPPED = 0
        START_WARMUP = 1
        WARMUP = 2
        STREAMING = 3
        ERROR = -1

    _ids = itertools.count(1)
    _OPTION_KEYS = ("encoder", "bitrate", "profile", "preset", "keyframe_interval", "encoder_properties",
                    "queue_size", "drop", "timestamps", "outputs", "web")

    def __init__(self, parent_logger: Optional[logging.Logger] = None, gst_log_file: Optional[str] = None,
                 gst_log_level: Optional[str] = None, dotenv_path: Optional[str] = None, *,
                 ring_slots: int = 4, skyline_bin: Optional[str] = None, _engine: Optional[Engine] = None,
                 **options):
        unknown = set(options) - set(self._OPTION_KEYS)
        if unknown:
            raise TypeError("unknown option(s) %s: want %s" % (", ".join(sorted(unknown)), ", ".join(self._OPTION_KEYS)))
        if not (isinstance(ring_slots, int) and 1 <= ring_slots <= 64):
            raise ValueError("ring_slots %r: want 1..64" % (ring_slots,))
        self.video_width = None
        self.video_height = None
        self.video_fps = None
        self.logger = (logging.getLogger(self.__class__.__name__) if parent_logger is None
                       else parent_logger.getChild(self.__class__.__name__))
        if gst_log_file is not None:
            os.environ["GST_DEBUG_FILE"] = gst_log_file
        if gst_log_level is not None:
            os.environ["GST_DEBUG"] = gst_log_level
        _dotenv.configure(dotenv_path, self.logger, getattr(self, "_needs_plugin_path", False))
        self.error = None
        self._options = {k: v for k, v in options.items() if v is not None}
        self._slots = ring_slots
        self._last_fps = self._last_width = self._last_height = None
        self._lock = threading.Lock()  # put vs start/stop/death
        self._changed = threading.Condition()
        self._session = 0
        self._ring = None
        self._opening = False
        self._warm_left = 0
        self._warm_first = 0.0
        self._last_warn = None
        self._monotonic = time.monotonic  # tests replace it
        self._put_ok = 0
        self._put_refused = 0
        self._closed = False
        self._state = SkyLine.State.STOPPED
        self.logger.info("state = %s", self._state)
        self._sid = "s%d" % next(SkyLine._ids)
        self._doorbells = [('{"op":"frame","stream":"%s","slot":%d}\n' % (self._sid, i)).encode()
                           for i in range(ring_slots)]
        self._engine = _engine if _engine is not None else Engine(skyline_bin, self.logger)
        self._add_msg = dict(self._add_request(), op="add", stream=self._sid, name=self.__class__.__name__,
                             options=self._options)
        self._engine.listen(self._sid, self._on_event)
        self._engine.on_death(self._on_engine_death)
        try:
            self._engine.ensure()
        except EngineError as e:
            self.error = str(e)  # no engine (yet): start_streaming reports it as ERROR
            self.logger.warning("%s", e)
        else:
            try:
                self._engine.request(dict(self._add_msg))
            except EngineError as e:  # the engine refused the stream: a configuration error
                self._engine.unlisten(self._sid)
                self._engine.off_death(self._on_engine_death)
                if _engine is None:  # ours alone (KVSSkyLine): end it now
                    self._engine.close()
                raise RuntimeError("%s: %s" % (self.__class__.__name__, e)) from None
        self._engine.replay.append(self._add_msg)  # sent again to a restarted engine

    @abstractmethod
    def _add_request(self) -> dict:
        """The engine request that creates this stream (kind and destination fields)."""

    def _precheck(self) -> Optional[str]:
        """A reason the stream cannot start, checked by start_streaming."""
        return None

    # state

    @property
    def state(self) -> "SkyLine.State":
        """The current :class:`SkyLine.State`."""
        return self._state

    @state.setter
    def state(self, state: "SkyLine.State") -> None:
        self._set_state(state)

    def _set_state(self, state, error=None):
        if error is not None:
            self.error = error
        if state is not self._state:
            with self._changed:
                self._state = state
                self._changed.notify_all()
            if state is SkyLine.State.ERROR:
                self.logger.warning("state = %s: %s", state, self.error)
            else:
                self.logger.info("state = %s", state)

    def wait_state(self, *states: "SkyLine.State", timeout: float = 20.0) -> "SkyLine.State":
        """Waits until :attr:`state` is one of states (e.g. STREAMING after the
        warm-up, while the stream opens in the background) and returns it.

        Raises:
            TimeoutError: not within timeout seconds (the message gives the state and error).
        """
        with self._changed:
            if not self._changed.wait_for(lambda: self._state in states, timeout):
                raise TimeoutError("%s: state %s after %.1f s, want %s (error: %s)" % (
                    self.__class__.__name__, self._state.name, timeout, "/".join(s.name for s in states), self.error))
            return self._state

    def _on_event(self, ev):
        # from the engine's reader thread: a stream of the current session failed
        if ev.get("state") == "ERROR" and ev.get("session") == self._session and \
                self._state in (SkyLine.State.STREAMING, SkyLine.State.WARMUP):
            with self._lock:
                self._ring = None
                self._set_state(SkyLine.State.ERROR, ev.get("error") or "stream failed")

    def _on_engine_death(self, reason):
        with self._lock:
            self._ring = None
            self._opening = False
            if self._state is not SkyLine.State.STOPPED:
                self._set_state(SkyLine.State.ERROR, reason)
            else:
                self.error = reason

    # control

    def start_streaming(self, fps: float = USE_LAST_VALUE, width: int = USE_LAST_VALUE,
                        height: int = USE_LAST_VALUE) -> None:
        """Start the streaming (again: a running session is closed first).

        Each of fps (frames per second), width and height (pixels, even) is a
        value, ``None`` (measured by a warm-up of :attr:`FPS_METER_WARMUP_FRAMES`
        frames) or :data:`USE_LAST_VALUE` (the value of the last session; measured
        when there was none). With all three known the stream opens now
        (:attr:`state` STREAMING, or ERROR with :attr:`error` saying why);
        else the state is START_WARMUP and the next put begins the warm-up.
        The engine is started here when it is not running (ERROR when it
        cannot be: binary missing, server port in use); at most about 15 s.

        Raises:
            ValueError, TypeError: a value out of range (fps 0 < fps <= 1000;
                width, height even, 2..8192).
            RuntimeError: the instance was closed.
        """
        if self._closed:
            raise RuntimeError("%s is closed" % self.__class__.__name__)
        fps = _check_param("fps", self._last_fps if fps == USE_LAST_VALUE else fps, True)
        width = _check_param("width", self._last_width if width == USE_LAST_VALUE else width, False)
        height = _check_param("height", self._last_height if height == USE_LAST_VALUE else height, False)
        with self._lock:
            was = self._state
            self._session += 1
            self._ring = None
            self._opening = False
        if was in (SkyLine.State.WARMUP, SkyLine.State.STREAMING) and self._engine.alive():
            self._stop_engine_stream()
        self.video_fps, self.video_width, self.video_height = fps, width, height
        if fps is None or width is None or height is None:
            # the engine is started now, so that the put ending the warm-up never waits for it
            reason = self._precheck()
            if reason is None:
                try:
                    self._engine.ensure()
                except EngineError as e:
                    reason = str(e)
            if reason is not None:
                self._set_state(SkyLine.State.ERROR, reason)
                return
            self.logger.info("Starting FPS meter warmup.")
            self._set_state(SkyLine.State.START_WARMUP)
            return
        self.logger.info("No FPS meter warmup needed.")
        self._open(fps, width, height, None)

    def _stop_engine_stream(self):
        try:
            self._engine.request({"op": "stop", "stream": self._sid})
        except EngineError as e:
            self.logger.warning("stopping the stream: %s", e)

    def _open(self, fps, width, height, first):
        """Opens the stream: synchronously (start_streaming) or, with the
        frame ending a warm-up, in the background. Returns put's result."""
        self._last_fps, self._last_width, self._last_height = fps, width, height
        self.video_fps, self.video_width, self.video_height = fps, width, height
        reason = self._precheck()
        if reason is None:
            try:
                self._engine.ensure()
            except EngineError as e:
                reason = str(e)
        if reason is not None:
            self._set_state(SkyLine.State.ERROR, reason)
            return False
        try:
            ring = Ring(self._slots, width * height * 4)
        except EngineError as e:
            self._set_state(SkyLine.State.ERROR, str(e))
            return False
        session = self._session
        msg = {"op": "start", "stream": self._sid, "fps": fps, "width": width, "height": height,
               "session": session, "ring": ring.path, "slots": ring.slots, "slot_size": ring.slot_size}
        if first is None:
            try:
                rep = self._engine.request(msg)
                err = None if rep.get("state") == "STREAMING" else (rep.get("error_text") or "stream not open")
            except EngineError as e:
                err = str(e)
            finally:
                ring.unlink()
            with self._lock:
                if session != self._session:
                    return False
                if err is None:
                    self._ring = ring
                    self._set_state(SkyLine.State.STREAMING)
                else:
                    self._set_state(SkyLine.State.ERROR, err)
            return err is None

        # after a warm-up: put must not wait for the pipeline to open
        self._write(ring, *first)
        self._opening = True

        def opened(rep, err):
            ring.unlink()
            with self._lock:
                if session != self._session:
                    return
                self._opening = False
                if rep is not None and rep.get("ok") and rep.get("state") == "STREAMING":
                    self._ring = ring
                    self._set_state(SkyLine.State.STREAMING)
                else:
                    self._set_state(SkyLine.State.ERROR, (rep or {}).get("error") or err or "stream not open")

        if not self._engine.request_async(msg, opened):
            ring.unlink()
            self._set_state(SkyLine.State.ERROR, self._engine._last_error or "engine not running")
            return False
        self._engine.send_raw(self._doorbells[0])
        return True

    def stop_streaming(self) -> None:
        """Stops the streaming: the engine ends the stream cleanly (files and
        KVS fragments are finalised; bounded by 6 s). Later puts return False."""
        with self._lock:
            was = self._state
            self._session += 1
            self._ring = None
            self._opening = False
        if was is not SkyLine.State.STOPPED and self._engine.alive():
            self._stop_engine_stream()
        self._set_state(SkyLine.State.STOPPED)

    # frames

    def put(self, frame: np.ndarray, capture_time=None) -> bool:
        """Put a frame to the video stream.

        Args:
            frame: ``(height, width, 3)`` BGR ``uint8`` (also ``(height, width)``
                gray or ``(height, width, 4)`` BGRA); any strides. A frame of
                another size than the stream's is scaled to it.
            capture_time: when the frame was captured: seconds since the epoch
                (``time.time()``, also a numpy number) or a
                :class:`datetime.datetime`; sets its timestamp. Default: now.

        Returns:
            ``True`` if the frame was handed to the stream (it will be
            encoded); ``False`` when stopped, in ERROR (a warning at most once a
            minute), during the warm-up (except for the frame that ends it),
            while the stream opens, or when the engine has ``ring_slots``
            frames not yet taken (counted in :meth:`stats`).

        Raises:
            TypeError: frame is None or not a numpy array.
            ValueError: wrong dtype or shape (the message names it), or a
                capture_time that is not finite or beyond int64 nanoseconds.

        Never waits for the engine: it costs one copy of the frame.
        """
        checked = check_frame(frame)
        capture_ns = _capture_ns(capture_time)
        st = self._state
        if st is SkyLine.State.STREAMING:
            with self._lock:
                ring = self._ring
                if ring is None or self._state is not SkyLine.State.STREAMING:
                    return False
                if not ring.free():
                    self._put_refused += 1
                    return False
                i = self._write(ring, frame, checked, capture_ns)
            if not self._engine.send_raw(self._doorbells[i]):
                return False
            self._put_ok += 1
            return True
        if st is SkyLine.State.STOPPED:
            return False
        if st is SkyLine.State.ERROR:
            now = self._monotonic()
            if self._last_warn is None or now - self._last_warn >= self.ERROR_LOG_INTERVAL:
                self._last_warn = now
                self.logger.warning("%s.put() was called in %s state: %s", self.__class__.__name__, st, self.error)
            return False
        with self._lock:
            if self._state is SkyLine.State.START_WARMUP:
                self._warm_left = self.FPS_METER_WARMUP_FRAMES
                self._warm_first = time.monotonic()
                self._set_state(SkyLine.State.WARMUP)
                return False
            if self._state is not SkyLine.State.WARMUP or self._opening:
                return False
            self._warm_left -= 1
            if self._warm_left > 0:
                return False
            elapsed = time.monotonic() - self._warm_first
            fps = self.video_fps or min(MAX_FPS, max(1, round(self.FPS_METER_WARMUP_FRAMES / elapsed))) \
                if elapsed > 0 else MAX_FPS
            h, w = frame.shape[:2]
            width = self.video_width or (w + 1) // 2 * 2
            height = self.video_height or (h + 1) // 2 * 2
            self.logger.info("Finished FPS meter warmup. Determined fps=%f, width=%d, height=%d", fps, width, height)
            ok = self._open(fps, width, height, (frame, checked, capture_ns))
        if ok:
            self._put_ok += 1
        return ok

    def _write(self, ring, frame, checked, capture_ns):
        """Copies a checked frame into the ring's next slot (scaling it to the
        stream's size) and publishes it. Returns the slot index."""
        fmt, h, w, c = checked
        W, H = self.video_width, self.video_height
        i = ring.next
        shape = (H, W) if c == 1 else (H, W, c)
        dst = ring.data(i, H * W * c).reshape(shape)
        if frame.ndim == 3 and c == 1:
            frame = frame[:, :, 0]
        if (h, w) == (H, W):
            np.copyto(dst, frame)
        else:
            _resize_into(frame, dst)
        ring.publish(i, fmt, W, H, W * c, H * W * c, capture_ns)
        ring.next = (i + 1) % ring.slots
        return i

    # beyond the original

    def stats(self) -> dict:
        """Counters: ``put_accepted`` and ``put_refused_ring_full`` (this
        process), and the engine's since the stream was created: ``accepted``,
        ``dropped``, ``encoded`` (access units), ``written``, ``encoded_bytes``,
        ``encoder``, ``destinations`` (``name``, ``written``, ``lost``, ``up``),
        ``engine_lost`` (frames of the ring the engine could not hand on).
        Engine fields are missing when the engine is not running."""
        out = {"put_accepted": self._put_ok, "put_refused_ring_full": self._put_refused,
               "state": self._state.name, "error": self.error}
        if self._engine.alive():
            try:
                eng = self._engine.request({"op": "stats", "stream": self._sid}).get("stats", {})
                eng["engine_state"] = eng.pop("state", None)
                out.update(eng)
            except EngineError as e:
                out["engine_error"] = str(e)
        return out

    @property
    def engine_pid(self) -> Optional[int]:
        """The process id of the engine (None when it is not running)."""
        return self._engine.pid if self._engine.alive() else None

    def close(self) -> None:
        """Stops the stream and removes it from the engine. Idempotent."""
        if self._closed:
            return
        self.stop_streaming()
        self._closed = True
        self._engine.unlisten(self._sid)
        self._engine.off_death(self._on_engine_death)
        if self._add_msg in self._engine.replay:
            self._engine.replay.remove(self._add_msg)
        if self._engine.alive():
            try:
                self._engine.request({"op": "remove", "stream": self._sid})
            except EngineError as e:
                self.logger.warning("removing the stream: %s", e)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "<%s state=%s fps=%s size=%sx%s>" % (self.__class__.__name__, self._state.name, self.video_fps,
                                                   self.video_width, self.video_height)


def _capture_ns(t):
    """capture_time (seconds since the epoch, a numpy number, or a datetime) in
    Unix nanoseconds. Raises TypeError or ValueError naming it."""
    if t is None:
        return time.time_ns()
    if isinstance(t, datetime.datetime):
        s = t.timestamp()
    elif isinstance(t, (int, float, np.integer, np.floating)) and not isinstance(t, bool):
        s = float(t)
    else:
        raise TypeError("capture_time %r: want seconds since the epoch or a datetime" % (t,))
    if not -_MAX_CAPTURE_S < s < _MAX_CAPTURE_S:  # also NaN and infinities
        raise ValueError("capture_time %r: want seconds since the epoch (finite, within +-%.0f)" % (t, _MAX_CAPTURE_S))
    return int(s * 1e9)


_MAX_CAPTURE_S = 9.2e9
"""Largest capture_time magnitude, in seconds: Unix nanoseconds fit in an int64 (the engine's slot header)."""


def _resize_into(frame, dst):
    """Scales frame into dst (bilinear with OpenCV when installed, else nearest)."""
    try:
        import cv2
        cv2.resize(np.ascontiguousarray(frame), (dst.shape[1], dst.shape[0]), dst=dst,
                   interpolation=cv2.INTER_LINEAR)
        return
    except ImportError:
        pass
    ys = (np.arange(dst.shape[0]) * frame.shape[0] // dst.shape[0])
    xs = (np.arange(dst.shape[1]) * frame.shape[1] // dst.shape[1])
    dst[...] = frame[ys][:, xs]
