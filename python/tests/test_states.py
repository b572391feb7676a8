"""The state machine through the Python API (SPEC A2, A3): warm-up, USE_LAST_VALUE
per parameter, restart while streaming, put's return value in every state, ERROR
when the engine cannot start (missing binary, port in use) with the reason, and
at most one ERROR warning a minute."""
import logging
import os
import socket
import time

import numpy as np
import pytest
from helpers import free_port, put_until

from skyline import USE_LAST_VALUE, EngineError, RTSPServer, RTSPSkyLine, SkyLine

S = SkyLine.State


@pytest.fixture
def server():
    srv = RTSPServer(port=free_port(), udp=False)
    srv.start()
    yield srv
    srv.close()


def frame(w=64, h=48, v=100):
    return np.full((h, w, 3), v, np.uint8)


def test_skyline_is_abstract():
    with pytest.raises(TypeError):
        SkyLine()


def test_warmup_measures_fps_and_size(server):
    sl = RTSPSkyLine(server, "warm")
    sl.FPS_METER_WARMUP_FRAMES = 10
    assert sl.state is S.STOPPED and sl.put(frame()) is False
    sl.start_streaming(None, None, None)
    assert sl.state is S.START_WARMUP
    f = frame(96, 64)
    t0 = time.monotonic()
    assert sl.put(f) is False and sl.state is S.WARMUP  # begins the warm-up
    results = []
    for _ in range(10):
        time.sleep(0.02)  # about 50 puts a second
        results.append(sl.put(f))
    rate = 10 / (time.monotonic() - t0)
    assert results == [False] * 9 + [True]  # the frame that ends the warm-up is the first one sent
    assert sl.wait_state(S.STREAMING, S.ERROR) is S.STREAMING, sl.error
    assert (sl.video_width, sl.video_height) == (96, 64)
    assert abs(sl.video_fps - rate) <= 1 + 0.1 * rate, (sl.video_fps, rate)  # the rate of the puts, rounded
    put_until(sl, f)
    assert sl.stats()["accepted"] >= 2


def test_use_last_value_each_parameter(server):
    sl = RTSPSkyLine(server, "last")
    sl.start_streaming(USE_LAST_VALUE, USE_LAST_VALUE, USE_LAST_VALUE)  # no last session: warm-up
    assert sl.state is S.START_WARMUP
    sl.start_streaming(25, 320, 240)
    assert sl.state is S.STREAMING
    sl.stop_streaming()
    for args, want in [((USE_LAST_VALUE, 160, 120), (25, 160, 120)),
                       ((20, USE_LAST_VALUE, 96), (20, 160, 96)),
                       ((15, 64, USE_LAST_VALUE), (15, 64, 96)),  # height from the last height (not width)
                       ((), (15, 64, 96))]:
        sl.start_streaming(*args)
        assert sl.state is S.STREAMING, sl.error
        assert (sl.video_fps, sl.video_width, sl.video_height) == want
        put_until(sl, frame(want[1], want[2]))
    assert sl.stats()["encoder"]


def test_restart_while_streaming_and_put_in_every_state(server):
    sl = RTSPSkyLine(server, "restart")
    assert sl.put(frame()) is False  # STOPPED
    sl.start_streaming(30, 64, 48)
    assert sl.state is S.STREAMING
    put_until(sl, frame())
    sl.start_streaming(30, 128, 96)  # restart while streaming
    assert sl.state is S.STREAMING and sl.video_width == 128
    put_until(sl, frame(128, 96))
    assert sl.put(frame(64, 48)) in (True, False)  # another size is scaled, never an error
    sl.start_streaming(None, 64, 48)  # restart into a warm-up
    assert sl.state is S.START_WARMUP and sl.put(frame()) is False
    assert sl.state is S.WARMUP and sl.put(frame()) is False
    sl.stop_streaming()
    assert sl.state is S.STOPPED and sl.put(frame()) is False
    sl.start_streaming(30, 64, 48)
    put_until(sl, frame())
    st = sl.stats()
    assert st["engine_lost"] == 0 and st["engine_bad_slots"] == 0, st


def test_error_when_binary_missing(monkeypatch, caplog):
    monkeypatch.setenv("SKYLINE_BIN", "/nonexistent/skyline")
    srv = RTSPServer(port=free_port(), udp=False)
    sl = RTSPSkyLine(srv, "nobin")  # the original's constructor does not fail either
    sl.start_streaming(30, 64, 48)
    assert sl.state is S.ERROR
    assert "/nonexistent/skyline" in sl.error and "not found" in sl.error
    sl.start_streaming(None, None, None)  # a warm-up needs the engine too: ERROR now, not at its end
    assert sl.state is S.ERROR and "not found" in sl.error
    with pytest.raises(EngineError, match="not found"):
        srv.start()
    # the argument names a binary too
    srv2 = RTSPServer(port=free_port(), udp=False, skyline_bin="/nonexistent/other")
    sl2 = RTSPSkyLine(srv2, "nobin")
    sl2.start_streaming(30, 64, 48)
    assert sl2.state is S.ERROR and "/nonexistent/other" in sl2.error

    # at most one warning a minute from put in ERROR
    clock = [1000.0]
    sl._monotonic = lambda: clock[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert all(sl.put(frame()) is False for _ in range(50))
        clock[0] += 59
        sl.put(frame())
        clock[0] += 2
        sl.put(frame())
    warnings = [r for r in caplog.records if "ERROR state" in r.getMessage()]
    assert len(warnings) == 2, [r.getMessage() for r in warnings]
    assert "not found" in warnings[0].getMessage()


def test_error_when_port_in_use():
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        srv = RTSPServer(port=port, udp=False)
        try:
            sl = RTSPSkyLine(srv, "/busy")
            sl.start_streaming(30, 64, 48)  # the docstring's order: stream first, then server.start
            with pytest.raises(RuntimeError, match="in use"):
                srv.start()
            assert sl.state is S.ERROR and "in use" in sl.error and str(port) in sl.error
            assert sl.put(frame()) is False
            sl.start_streaming(30, 64, 48)  # still no server
            assert sl.state is S.ERROR and "in use" in sl.error
        finally:
            srv.close()


def test_bad_parameters_table(server):
    sl = RTSPSkyLine(server, "params")
    for args, exc, words in [((0, 64, 48), ValueError, "fps 0"), ((-5, 64, 48), ValueError, "fps -5"),
                             ((2000, 64, 48), ValueError, "fps 2000"), ((30, 65, 48), ValueError, "width 65"),
                             ((30, 64, 0), ValueError, "height 0"), ((30, 64, 10000), ValueError, "height 10000"),
                             (("30", 64, 48), TypeError, "fps '30'"), ((30, 64.5, 48), ValueError, "width 64.5")]:
        with pytest.raises(exc, match=words):
            sl.start_streaming(*args)
        assert sl.state is S.STOPPED
