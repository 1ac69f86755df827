#!/usr/bin/env python3
"""Reference sRGB colours of the nclx fixtures (scripts/build/nclx-fixtures.sh) and of the PNG
gAMA/cHRM fixtures (scripts/build/png-gamma-fixtures.py), computed without
libvips and without the engine's code: each file is decoded by its format's own reference tool
(libavif's avifdec for AVIF, libheif's heif-dec for HEIC: YCbCr to R'G'B' with the file's matrix
and range), then converted to sRGB by colour-science (its CICP curves and colourspaces:
eotf_ST2084, eotf_BT2100_HLG with a 1000 cd/m2 display, the BT.2020 and Display P3 colourspaces,
Bradford adaptation), clipped to the sRGB gamut in linear light. HDR is tone-mapped as the README
says: ITU-R BT.2390's EETF (written out below from the recommendation's formulas) from 1000 to
203 cd/m2 on max(R, G, B) with the three channels scaled alike, and 203 cd/m2 as SDR white.
PNGs are read by pypng and converted as browsers show them (the PNG spec's precedence: iCCP >
sRGB > cHRM/gAMA): linear = sample^(1/gAMA), cHRM's primaries (else sRGB's).

Usage: scripts/build/nclx-reference.py  (needs avifdec from libavif-bin, the heif-dec that
scripts/build/nclx-fixtures.sh unpacks, and a Python with colour-science, numpy and pypng:
python3 -m venv /tmp/v && /tmp/v/bin/pip install colour-science numpy pypng)
Prints one line per fixture: the patches' sRGB values, left to right (the centre of each 32x32
patch); tests/render.rs holds a copy of these numbers.
"""
import os
import subprocess
import sys
import tempfile

import colour
import numpy as np
import png

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
HEIF_TOOLS = os.path.join(ROOT, "target", "heif-tools-trixie")
# (file, colourspace of its primaries, transfer): the fixtures' nclx code points.
CASES = [
    ("nclx-p3.avif", "Display P3", "sRGB"),
    ("nclx-p3.heic", "Display P3", "sRGB"),
    ("nclx-rec2020.avif", "ITU-R BT.2020", "BT.2020"),
    ("nclx-rec2020-pq.avif", "ITU-R BT.2020", "PQ"),
    ("nclx-rec2020-pq.heic", "ITU-R BT.2020", "PQ"),
    ("nclx-rec2020-hlg.avif", "ITU-R BT.2020", "HLG"),
    ("png-gama1.png", "sRGB", 1.0),
    ("png-gama-chrm-p3.png", colour.RGB_Colourspace(
        "cHRM", np.array([[0.680, 0.320], [0.265, 0.690], [0.150, 0.060]]), np.array([0.3127, 0.3290]),
        use_derived_matrix_RGB_to_XYZ=True, use_derived_matrix_XYZ_to_RGB=True), 1 / 2.2),
    ("png-gama-srgb.png", "sRGB", "sRGB"),  # the sRGB chunk wins
    ("png-gama-iccp.png", "Display P3", "sRGB"),  # the iCCP (Display P3, sRGB curve) wins
]
PEAK, SDR_WHITE = 1000.0, 203.0


def decoded(name, tmp):
    """R'G'B' (0..1) of the file as its reference decoder gives it, as a 16-bit PNG."""
    out = os.path.join(tmp, name + ".png")
    if name.endswith(".png"):
        out = os.path.join(FIXTURES, name)
    elif name.endswith(".avif"):
        subprocess.run(["avifdec", "-d", "16", os.path.join(FIXTURES, name), out], check=True,
                       stdout=subprocess.DEVNULL)
    else:
        lib = os.path.join(HEIF_TOOLS, "usr/lib/x86_64-linux-gnu")
        subprocess.run([os.path.join(lib, "ld-linux-x86-64.so.2"), "--inhibit-cache", "--library-path", lib,
                        os.path.join(HEIF_TOOLS, "usr/bin/heif-dec"), os.path.join(FIXTURES, name), out],
                       check=True, stdout=subprocess.DEVNULL,
                       env=dict(os.environ, LIBHEIF_PLUGIN_PATH=os.path.join(lib, "libheif/plugins")))
    width, height, rows, info = png.Reader(filename=out).asDirect()
    pixels = np.array([list(r) for r in rows], dtype=float).reshape(height, width, info["planes"])
    return pixels[..., :3] / (2 ** info["bitdepth"] - 1)


def eetf(nits):
    """ITU-R BT.2390 EETF (black at 0), PEAK to SDR_WHITE, in cd/m2."""
    pq = lambda l: colour.models.eotf_inverse_ST2084(l)
    source = pq(PEAK)
    max_lum = pq(SDR_WHITE) / source
    knee = 1.5 * max_lum - 0.5
    e1 = np.minimum(pq(nits) / source, 1.0)
    t = (e1 - knee) / (1 - knee)
    spline = (2 * t**3 - 3 * t**2 + 1) * knee + (t**3 - 2 * t**2 + t) * (1 - knee) + (-2 * t**3 + 3 * t**2) * max_lum
    return colour.models.eotf_ST2084(np.where(e1 < knee, e1, spline) * source)


def to_srgb(signal, space, transfer):
    if isinstance(transfer, float):  # a PNG's gAMA
        linear = signal ** (1 / transfer)
    elif transfer == "sRGB":
        linear = colour.models.eotf_sRGB(signal)
    elif transfer == "BT.2020":
        linear = colour.models.oetf_inverse_BT2020(signal)
    elif transfer == "PQ":
        linear = colour.models.eotf_ST2084(signal)  # cd/m2
    else:
        linear = colour.models.eotf_BT2100_HLG(signal, L_B=0, L_W=PEAK, gamma=1.2)  # cd/m2
    linear = colour.RGB_to_RGB(linear, space, "sRGB", chromatic_adaptation_transform="Bradford")
    linear = np.maximum(linear, 0)
    if transfer in ("PQ", "HLG"):
        peak = linear.max(axis=-1, keepdims=True)
        scale = np.where(peak > 0, eetf(peak) / np.where(peak > 0, peak, 1), 0)
        linear = linear * scale / SDR_WHITE
    return np.round(colour.models.eotf_inverse_sRGB(np.clip(linear, 0, 1)) * 255).astype(int)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        for name, space, transfer in CASES:
            signal = decoded(name, tmp)
            centres = np.array([signal[16, 16 + 32 * i] for i in range(signal.shape[1] // 32)])
            print(name, " ".join("%d/%d/%d" % tuple(v) for v in to_srgb(centres, space, transfer)))


if __name__ == "__main__":
    sys.exit(main())
