"""RTSPServer and RTSPSkyLine: serve OpenCV frames over RTSP.

One :class:`RTSPServer` (one engine process) serves any number of
:class:`RTSPSkyLine` streams, one per path::

    server = RTSPServer(port="8554")
    skyline1 = RTSPSkyLine(server, "/stream1")
    skyline2 = RTSPSkyLine(server, "/stream2")
    skyline1.start_streaming(30, 640, 480)
    skyline2.start_streaming(30, 640, 480)
    server.start()

    while True:
        frame1 = ...  # numpy array of shape (480, 640, 3), BGR, uint8
        frame2 = ...
        skyline1.put(frame1)
        skyline2.put(frame2)

The streams are at ``rtsp://127.0.0.1:8554/stream1`` and ``.../stream2``.
"""

import logging
import weakref
from typing import Any, List, Optional

from ._engine import Engine, EngineError
from .skyline import SkyLine


class RTSPServer:
    """SkyLine's RTSP server, run by one engine process.

    Args:
        port: TCP port to listen on (default 8554; 0 picks a free one, see
            :attr:`port` after :meth:`start`). A str is accepted, as in the original.
        parent_logger: the server logs through a child of this logger.

    Keyword-only:
        udp: also offer RTP over UDP (ports 8000-8001 and multicast 8002);
            False serves TCP only.
        skyline_bin: the engine binary (else ``$SKYLINE_BIN``, else PATH).
    """

    def __init__(self, port="8554", parent_logger: Optional[logging.Logger] = None, *, udp: bool = True,
                 skyline_bin: Optional[str] = None):
        self.logger = (logging.getLogger(self.__class__.__name__) if parent_logger is None
                       else parent_logger.getChild(self.__class__.__name__))
        try:
            p = int(port)
        except (TypeError, ValueError):
            raise ValueError("port %r: want a number 0..65535" % (port,)) from None
        if not 0 <= p <= 65535:
            raise ValueError("port %r: want a number 0..65535" % (port,))
        self._bound = None
        self.streams = {}  # path -> RTSPSkyLine (or None for a bare add_stream)
        self.error = None
        self._engine = Engine(skyline_bin, self.logger)
        self._server_msg = {"op": "server", "port": p, "udp": bool(udp)}
        self._engine.replay.append(self._server_msg)
        self._listen_msg = {"op": "listen"}
        self._engine.on_death(self._on_death)
        # dropped without close(): the engine ends (and frees the port)
        self._finalizer = weakref.finalize(self, self._engine.close, False)

    def _on_death(self, reason):
        self._bound = None

    def add_stream(self, mount_point: str, pipeline: Any = None) -> None:
        """Registers a path. RTSPSkyLine calls it; SkyLine builds the pipeline
        itself, so a GStreamer pipeline string is refused (ValueError)."""
        if not isinstance(mount_point, str):
            raise TypeError("mount_point %r: want a str such as \"/camera\"" % (mount_point,))
        if isinstance(pipeline, str):
            raise ValueError("RTSPServer.add_stream: GStreamer pipelines are not taken; "
                             "create RTSPSkyLine(server, %r) instead" % mount_point)
        path = mount_point if mount_point.startswith("/") else "/" + mount_point
        if path in self.streams and self.streams[path] is not None:
            raise ValueError("path %s is already served" % path)
        self.logger.info('Adding stream to mount point "%s"', path)
        self.streams[path] = pipeline

    def remove_stream(self, mount_point: str) -> None:
        """Removes a path; its RTSPSkyLine is closed."""
        path = mount_point if mount_point.startswith("/") else "/" + mount_point
        sl = self.streams.pop(path, None)
        if sl is not None:
            sl.close()

    def start(self) -> None:
        """Starts serving (starts the engine when needed). Serving already:
        nothing to do.

        Raises:
            RuntimeError: the engine cannot start or the port cannot be bound
                (e.g. in use); the streams of this server go to ERROR with the
                same reason (:attr:`SkyLine.error`).
        """
        if self._bound is not None and self._engine.alive():
            return  # already serving (a second start, as gst-rtsp-server's attach allowed)
        self.logger.info("Starting RTSPServer")
        try:
            self._engine.ensure()
            rep = self._engine.request(dict(self._listen_msg))
        except EngineError as e:
            self.error = str(e)
            for sl in list(self.streams.values()):
                if sl is not None:
                    sl._server_failed(self.error)
            raise EngineError("RTSPServer: %s" % e) from None
        self.error = None
        self._bound = rep.get("port")
        if self._bound:
            # port 0: a restarted engine listens on the port picked now, so
            # that the URLs given out stay valid
            self._server_msg["port"] = self._bound
        if self._listen_msg not in self._engine.replay:
            self._engine.replay.append(self._listen_msg)

    def stop(self) -> None:
        """Stops serving (viewers are disconnected); :meth:`start` serves again."""
        if self._listen_msg in self._engine.replay:
            self._engine.replay.remove(self._listen_msg)
        if self._engine.alive():
            try:
                self._engine.request({"op": "unlisten"})
            except EngineError as e:
                self.logger.warning("stopping the server: %s", e)
        self._bound = None

    @property
    def port(self) -> int:
        """The port the server listens on (the bound one after start)."""
        return self._bound or self._server_msg["port"]

    def urls(self) -> List[str]:
        """The URLs of the streams, ``rtsp://127.0.0.1:PORT/PATH``."""
        return ["rtsp://127.0.0.1:%d%s" % (self.port, p) for p in self.streams]

    @property
    def engine_pid(self) -> Optional[int]:
        """Process id of the engine (None when not running)."""
        return self._engine.pid if self._engine.alive() else None

    def close(self) -> None:
        """Closes every stream and ends the engine."""
        for sl in list(self.streams.values()):
            if sl is not None:
                sl.close()
        self._finalizer.detach()
        self._engine.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return "<%s streams=[%s]>" % (self.__class__.__name__, ", ".join(self.urls()))


class RTSPSkyLine(SkyLine):
    """A :class:`~skyline.SkyLine` served by an :class:`RTSPServer` at path.

    Args:
        server: the RTSPServer (its engine encodes this stream).
        path: the stream's path (a missing leading ``/`` is added).
        args, kwargs: passed to :class:`~skyline.SkyLine` (loggers, .env,
            encoder options, extra outputs, ...).

    Raises:
        RuntimeError: the engine refused the stream (path in use, missing
            GStreamer element: the message says how to install it).
    """

    def __init__(self, server: RTSPServer, path: str, *args: Any, **kwargs: Any) -> None:
        if not isinstance(server, RTSPServer):
            raise TypeError("server: want an RTSPServer, got %s" % type(server).__name__)
        if not isinstance(path, str):
            raise TypeError("path %r: want a str such as \"/camera\"" % (path,))
        self.server = server
        self.path = path if path.startswith("/") else "/" + path
        server.add_stream(self.path)
        try:
            super().__init__(*args, _engine=server._engine, **kwargs)
        except BaseException:
            server.streams.pop(self.path, None)
            raise
        server.streams[self.path] = self

    def _add_request(self):
        return {"kind": "rtsp", "path": self.path}

    def _precheck(self):
        return self.server.error

    def _server_failed(self, reason):
        with self._lock:
            self._ring = None
            if self._state is not SkyLine.State.STOPPED:
                self._set_state(SkyLine.State.ERROR, reason)
            else:
                self.error = reason

    @property
    def url(self) -> str:
        """This stream's URL."""
        return "rtsp://127.0.0.1:%d%s" % (self.server.port, self.path)

    def close(self) -> None:
        super().close()
        if self.server.streams.get(self.path) is self:
            del self.server.streams[self.path]
