#!/usr/bin/env python3
"""Draws the app icons (public/icons/*.png) with the standard library only: a navy tile with a
white "N". Run again after changing the design; the PNGs are committed."""
import struct
import sys
import zlib
from pathlib import Path

NAVY = (27, 58, 107)
TEAL = (31, 163, 154)
WHITE = (255, 255, 255)


def png(width, height, pixel):
    rows = []
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            row.extend(pixel(x, y))
        rows.append(bytes(row))
    raw = zlib.compress(b"".join(rows), 9)

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def icon(size, maskable):
    # Maskable icons keep the glyph inside the central 80% safe zone and fill the whole square.
    radius = 0 if maskable else size * 0.18
    glyph = 0.30 if maskable else 0.36
    lo, hi = size * (0.5 - glyph), size * (0.5 + glyph)
    stroke = size * 0.11

    def inside_rounded(x, y):
        if radius == 0:
            return True
        cx = min(max(x, radius), size - radius)
        cy = min(max(y, radius), size - radius)
        return (x - cx) ** 2 + (y - cy) ** 2 <= radius**2

    def pixel(x, y):
        px, py = x + 0.5, y + 0.5
        if not inside_rounded(px, py):
            return (0, 0, 0, 0)
        t = py / size
        bg = tuple(int(NAVY[i] * (1 - t * 0.35) + TEAL[i] * t * 0.35) for i in range(3))
        if lo <= py <= hi:
            left = lo <= px <= lo + stroke
            right = hi - stroke <= px <= hi
            # the diagonal from top-left to bottom-right
            u = (py - lo) / (hi - lo)
            dx = lo + stroke / 2 + u * (hi - lo - stroke)
            diagonal = abs(px - dx) <= stroke / 2
            if left or right or diagonal:
                return WHITE + (255,)
        return bg + (255,)

    return png(size, size, pixel)


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "public/icons")
    out.mkdir(parents=True, exist_ok=True)
    (out / "icon-192.png").write_bytes(icon(192, False))
    (out / "icon-512.png").write_bytes(icon(512, False))
    (out / "icon-maskable-512.png").write_bytes(icon(512, True))


if __name__ == "__main__":
    main()
