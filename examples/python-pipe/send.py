#!/usr/bin/python3
"""A Python OpenCV loop that streams its frames with SkyLine.

Each frame is written to stdout as raw BGR bytes (the numpy array OpenCV
holds, height x width x 3) and `skyline serve --input stdin` reads them:

    /usr/bin/python3 send.py --size 640x360 --fps 30 | \
        skyline serve --input stdin --pix-fmt bgr24 --size 640x360 --fps 30

(see run.sh). In your own loop, replace make_frame with your camera and
drawing code and keep the last lines: sys.stdout.buffer.write(frame.tobytes()).

With --connect unix:PATH (or tcp:HOST:PORT) it sends the same bytes to
`skyline serve --input unix:PATH` instead, which keeps serving (an offline
card) when this program stops, and streams it again when it reconnects:

    s = socket.socket(socket.AF_UNIX); s.connect(PATH)   # once
    s.sendall(frame.tobytes())                           # per frame

Each frame carries its number as 16 black/white blocks in a band at the top
(the layout of SkyLine's test pattern), so a test can read it back.
"""
import argparse
import socket
import sys
import time

import cv2
import numpy as np

BITS = 16


def number_band(w, h):
    """Where the number's blocks are: the rows of the band, and for each
    column the bit it shows (-1 outside the band), as in SkyLine's
    internal/testpattern: band y 4%..16% of the height, x 4%..96% of the
    width, 16 blocks, most significant bit first."""
    fy = (np.arange(h) + 0.5) / h
    fx = (np.arange(w) + 0.5) / w
    rows = np.nonzero((fy >= 0.04) & (fy < 0.16))[0]
    inside = (fx >= 0.04) & (fx < 0.96)
    bit = np.where(inside, ((fx - 0.04) / 0.92 * BITS).astype(int), -1)
    return rows, np.clip(bit, -1, BITS - 1)


def make_frame(frame, n, band):
    """Draws frame n into frame (BGR, uint8): a moving picture and its number."""
    h, w = frame.shape[:2]
    frame[:] = (90, 60, 30)
    cv2.circle(frame, ((n * 4) % w, h * 3 // 5), h // 6, (0, 200, 255), -1)
    cv2.putText(frame, "frame %d" % n, (w // 20, h * 9 // 10),
                cv2.FONT_HERSHEY_SIMPLEX, h / 400, (255, 255, 255), 2)
    rows, bit = band
    cols = bit >= 0
    on = (n >> (BITS - 1 - np.maximum(bit, 0))) & 1
    value = np.where(on == 1, 235, 20).astype(np.uint8)  # white / black
    frame[rows[0]:rows[-1] + 1, cols] = value[cols][None, :, None]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="640x360", help="WIDTHxHEIGHT")
    ap.add_argument("--fps", type=float, default=30)
    ap.add_argument("--frames", type=int, default=0, help="stop after N frames (0: never)")
    ap.add_argument("--start", type=int, default=0, help="number of the first frame")
    ap.add_argument("--connect", default="", help="unix:PATH or tcp:HOST:PORT of `skyline serve --input` (default: stdout)")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))

    frame = np.zeros((h, w, 3), np.uint8)
    band = number_band(w, h)
    out = sys.stdout.buffer
    if args.connect:
        kind, _, addr = args.connect.partition(":")
        if kind == "unix":
            s = socket.socket(socket.AF_UNIX)
            s.connect(addr)
        else:
            host, _, port = addr.rpartition(":")
            s = socket.create_connection((host, int(port)))
        out = s.makefile("wb")
    start = time.monotonic()
    n = 0
    try:
        while args.frames == 0 or n < args.frames:
            make_frame(frame, args.start + n, band)
            out.write(frame.tobytes())  # one raw BGR frame
            out.flush()
            n += 1
            # keep the frame rate: sleep until frame n is due
            time.sleep(max(0.0, start + n / args.fps - time.monotonic()))
    except KeyboardInterrupt:
        pass  # Ctrl-C
    except (BrokenPipeError, ConnectionResetError):
        if not args.connect:
            return  # skyline stopped reading the pipe
        # skyline closed the connection: it stopped, timed this producer
        # out (--producer-timeout), or refused it because another producer
        # streams; its log says which.
        sys.exit("send.py: skyline closed the connection after %d frames (stopped, timed out, or "
                 "refused because another producer is streaming: see skyline's log)" % n)


if __name__ == "__main__":
    main()
