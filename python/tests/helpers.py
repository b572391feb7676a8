"""Numbered frames (the layout of SkyLine's internal/testpattern), ffmpeg readers and PSNR."""
import os
import select
import socket
import subprocess
import threading
import time

import numpy as np

BITS = 16
_BAND_TOP, _BAND_BOTTOM, _BAND_LEFT, _BAND_RIGHT = 0.04, 0.16, 0.04, 0.96


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def background(w, h, seed):
    """A smooth, textured picture (camera-like enough for the encoder)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    b = 128 + 60 * np.sin(x / 23.0 + seed) * np.cos(y / 31.0)
    g = 128 + 60 * np.sin((x + y) / 41.0 + seed)
    r = 128 + 60 * np.cos(x / 17.0 - seed) * np.sin(y / 29.0)
    return np.clip(np.dstack([b, g, r]), 0, 255).astype(np.uint8)


def draw_number(frame, n):
    """Draws n as 16 black/white blocks in the band at the top, most significant bit first."""
    h, w = frame.shape[:2]
    fy = (np.arange(h) + 0.5) / h
    fx = (np.arange(w) + 0.5) / w
    rows = np.nonzero((fy >= _BAND_TOP) & (fy < _BAND_BOTTOM))[0]
    cols = np.nonzero((fx >= _BAND_LEFT) & (fx < _BAND_RIGHT))[0]
    bit = np.clip(((fx[cols] - _BAND_LEFT) / (_BAND_RIGHT - _BAND_LEFT) * BITS).astype(int), 0, BITS - 1)
    on = (n >> (BITS - 1 - bit)) & 1
    value = np.where(on == 1, 235, 20).astype(np.uint8)
    frame[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] = value[None, :, None]
    return frame


def make_frame(bg, n):
    f = bg.copy()
    h, w = f.shape[:2]
    x = (n * 7) % max(1, w - 40)
    f[h * 3 // 5:h * 3 // 5 + 30, x:x + 40] = (0, 200, 255)  # something that moves
    return draw_number(f, n)


def read_number(frame):
    """The number in frame's band, or None when a block is neither black nor white."""
    h, w = frame.shape[:2]
    bw = (_BAND_RIGHT - _BAND_LEFT) / BITS
    y0 = int((_BAND_TOP + 0.25 * (_BAND_BOTTOM - _BAND_TOP)) * h)
    y1 = int((_BAND_BOTTOM - 0.25 * (_BAND_BOTTOM - _BAND_TOP)) * h)
    n = 0
    for bit in range(BITS):
        x0 = int((_BAND_LEFT + (bit + 0.25) * bw) * w)
        x1 = int((_BAND_LEFT + (bit + 0.75) * bw) * w)
        avg = frame[y0:y1 + 1, x0:x1 + 1].mean()
        if 90 < avg < 165:
            return None
        n = n << 1 | (1 if avg >= 128 else 0)
    return n


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 99.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


class Reader(threading.Thread):
    """ffmpeg decoding a URL or file into BGR frames (every decoded picture, no rate conversion)."""

    def __init__(self, src, w, h, count=0, rtsp=True):
        super().__init__(daemon=True)
        args = ["ffmpeg", "-v", "error", "-nostdin"]
        if rtsp:
            args += ["-rtsp_transport", "tcp", "-timeout", "10000000"]
        args += ["-i", src]
        if count:
            args += ["-frames:v", str(count)]
        args += ["-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "bgr24", "-"]
        self.w, self.h = w, h
        self.frames = []
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.start()

    def run(self):
        size = self.w * self.h * 3
        while True:
            b = self.proc.stdout.read(size)
            if len(b) < size:
                break
            self.frames.append(np.frombuffer(b, np.uint8).reshape(self.h, self.w, 3))
        self.err = self.proc.stderr.read().decode(errors="replace")
        self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.join(10)


def wait_pid_gone(pid, timeout):
    """Waits for process pid to end (pidfd: an event, not polling). True when it did."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        r, _, _ = select.select([fd], [], [], timeout)
        return bool(r)
    finally:
        os.close(fd)


def put_until(sl, frame, timeout=5.0, **kw):
    """put until it returns True (the ring or encoder may be momentarily full)."""
    deadline = time.monotonic() + timeout
    while not sl.put(frame, **kw):
        if time.monotonic() > deadline:
            raise AssertionError("put refused for %.1f s (state %s, error %s)" % (timeout, sl.state, sl.error))
        time.sleep(0.002)
