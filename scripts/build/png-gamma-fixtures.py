#!/usr/bin/env python3
"""Make the PNG gAMA/cHRM fixtures (issue 20, colour B), with python3's standard library only:
256x32 RGB, eight 32x32 patches (the wide-gamut fixtures' colours plus a P3 green), differing
only in their colour chunks, to test the PNG spec's precedence (iCCP > sRGB > cHRM/gAMA):
  png-gama1.png         gAMA 1.0 (the samples are linear light), no cHRM
  png-gama-chrm-p3.png  gAMA 1/2.2 and cHRM with Display P3's primaries (D65)
  png-gama-srgb.png     gAMA 1.0 and an sRGB chunk: sRGB wins, the gAMA is ignored
  png-gama-iccp.png     gAMA 1.0 and the iCCP (Display P3) of rgb-patches-p3.png: the ICC wins
Reference colours: scripts/build/nclx-reference.py. Usage: scripts/build/png-gamma-fixtures.py
"""
import os
import struct
import zlib

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures")
PATCHES = [(30, 200, 40), (255, 0, 0), (0, 0, 255), (224, 172, 140), (90, 150, 210), (40, 40, 40), (128, 128, 128), (220, 220, 220)]


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def chunks(png, kind):
    """The data of every chunk of this kind in a PNG file."""
    at, found = 8, []
    while at < len(png):
        length, name = struct.unpack(">I4s", png[at:at + 8])
        if name == kind:
            found.append(png[at + 8:at + 8 + length])
        at += 12 + length
    return found


def write(name, colour_chunks):
    row = b"".join(bytes(p) for p in PATCHES for _ in range(32))
    raw = b"".join(b"\0" + row for _ in range(32))
    ihdr = struct.pack(">IIBBBBB", 32 * len(PATCHES), 32, 8, 2, 0, 0, 0)
    with open(os.path.join(FIXTURES, name), "wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + b"".join(colour_chunks)
                  + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def gama(gamma):
    return chunk(b"gAMA", struct.pack(">I", round(gamma * 100000)))


P3 = [0.3127, 0.3290, 0.680, 0.320, 0.265, 0.690, 0.150, 0.060]  # white, red, green, blue (x, y)
iccp = chunks(open(os.path.join(FIXTURES, "rgb-patches-p3.png"), "rb").read(), b"iCCP")[0]
write("png-gama1.png", [gama(1.0)])
write("png-gama-chrm-p3.png", [gama(1 / 2.2), chunk(b"cHRM", struct.pack(">8I", *(round(v * 100000) for v in P3)))])
write("png-gama-srgb.png", [gama(1.0), chunk(b"sRGB", b"\0")])
write("png-gama-iccp.png", [gama(1.0), chunk(b"iCCP", iccp)])
