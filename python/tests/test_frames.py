"""Frames (SPEC A1, C): numpy BGR/gray/BGRA, views with any strides, and the bad
input table: each a TypeError/ValueError naming what is wrong, the stream unaffected."""
import numpy as np
import pytest
from helpers import Reader, background, free_port, make_frame, put_until, read_number

from skyline import RTSPServer, RTSPSkyLine

W, H = 160, 120


@pytest.fixture
def stream():
    srv = RTSPServer(port=free_port(), udp=False)
    srv.start()
    sl = RTSPSkyLine(srv, "frames")
    sl.start_streaming(30, W, H)
    yield srv, sl
    srv.close()


BAD = [
    (None, TypeError, "None"),
    ([[1, 2, 3]], TypeError, "list"),
    (np.zeros((H, W, 3), np.float32), ValueError, "dtype float32"),
    (np.zeros((H, W, 3), np.uint16), ValueError, "dtype uint16"),
    (np.zeros((H, W, 2), np.uint8), ValueError, r"shape \(120, 160, 2\)"),
    (np.zeros((H, W, 3, 1), np.uint8), ValueError, r"shape \(120, 160, 3, 1\)"),
    (np.zeros((W * 3,), np.uint8), ValueError, r"shape \(480,\)"),
    (np.zeros((0, W, 3), np.uint8), ValueError, r"shape \(0, 160, 3\)"),
    (np.zeros((2, 9000, 3), np.uint8), ValueError, r"shape \(2, 9000, 3\).*8192"),  # huge
]


def test_bad_input_table(stream):
    _, sl = stream
    bg = background(W, H, 1.0)
    sent = 0
    for bad, exc, words in BAD:
        with pytest.raises(exc, match=words):
            sl.put(bad)
        put_until(sl, make_frame(bg, sent))  # the stream goes on
        sent += 1
    st = sl.stats()
    assert st["state"] == "STREAMING" and st["put_accepted"] == sent
    assert st["engine_lost"] == 0 and st["engine_bad_slots"] == 0, st


BAD_CAPTURE_TIMES = [
    ("now", TypeError, "capture_time 'now'"),
    (float("nan"), ValueError, "capture_time nan"),
    (float("inf"), ValueError, "capture_time inf"),
    (1e30, ValueError, "capture_time 1e\\+30"),  # was struct.error
]


def test_capture_time_table(stream):
    import datetime
    import time
    _, sl = stream
    f = np.zeros((H, W, 3), np.uint8)
    for bad, exc, words in BAD_CAPTURE_TIMES:
        with pytest.raises(exc, match=words):
            sl.put(f, capture_time=bad)
    now = time.time()
    for good in [now, int(now), np.float64(now), np.int64(now), np.float32(now),
                 datetime.datetime.now(datetime.timezone.utc)]:
        put_until(sl, f, capture_time=good)  # numpy numbers are numbers
    st = sl.stats()
    assert st["state"] == "STREAMING" and st["engine_bad_slots"] == 0, st


def test_formats_and_views_decode(stream):
    srv, sl = stream
    bg = background(2 * W, 2 * H, 3.0)
    reader = None
    kinds = []
    for n in range(60):
        big = make_frame(bg, 0)
        small = make_frame(background(W, H, 3.0), n)
        kind = n % 5
        if kind == 0:
            f = small  # contiguous BGR
        elif kind == 1:
            f = np.ascontiguousarray(np.dstack([small, np.full((H, W), 255, np.uint8)]))  # BGRA
        elif kind == 2:
            f = small[:, :, ::-1][:, :, ::-1]  # negative strides (a view)
        elif kind == 3:
            canvas = np.zeros((H + 20, W + 30, 3), np.uint8)
            canvas[10:10 + H, 15:15 + W] = small
            f = canvas[10:10 + H, 15:15 + W]  # a slice: non-contiguous rows
        else:
            f = np.ascontiguousarray(make_frame(bg, n)[::2, ::2])  # from a bigger picture
        kinds.append(kind)
        if n == 3:
            reader = Reader(srv.urls()[0], W, H, 40)
        put_until(sl, f)
        import time
        time.sleep(1 / 30)
    reader.join(20)
    reader.stop()
    ns = [read_number(f) for f in reader.frames]
    assert len(ns) == 40 and None not in ns, (ns, reader.err)
    assert ns == list(range(ns[0], ns[0] + 40)), ns


def test_gray_and_other_size(stream):
    srv, sl = stream
    gray = np.full((H, W), 200, np.uint8)
    put_until(sl, gray)
    put_until(sl, gray[:, :, None])  # (h, w, 1)
    put_until(sl, np.full((H * 2, W * 2, 3), 50, np.uint8))  # scaled to the stream's size
    put_until(sl, np.full((H // 2 + 1, W // 2 + 1), 50, np.uint8))  # odd size, scaled
    st = sl.stats()
    assert st["engine_bad_slots"] == 0 and st["engine_lost"] == 0, st
