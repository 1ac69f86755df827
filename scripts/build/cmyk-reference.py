#!/usr/bin/env python3
"""Reference sRGB colours of the CMYK patch fixtures, for the golden numbers in tests/render.rs.

Computed by LittleCMS (through Pillow's ImageCms), not by libvips: perceptual intent with black-point compensation, the way Photoshop
and sharp convert CMYK. Files without a profile use libvips' built-in CMYK profile (written out
by `vips tiffsave --profile cmyk`), since that is what "no profile" means to the engine, and
the target is libvips' built-in sRGB profile, the one the engine converts to.

Usage: scripts/build/cmyk-reference.py  (needs Pillow: pip install Pillow; and vips on PATH)
Prints one line per fixture: the four patches' sRGB values, left to right; tests/render.rs
holds a copy of these numbers.
"""
import io
import os
import subprocess
import sys
import tempfile

from PIL import Image, ImageCms

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures")


def builtin_profile(name, bands, interpretation):
    """One of libvips' built-in profiles, as bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "k.raw")
        open(raw, "wb").write(bytes(bands))
        subprocess.run(["vips", "rawload", raw, f"{tmp}/k.v", "1", "1", str(bands)], check=True)
        subprocess.run(["vips", "copy", f"{tmp}/k.v", f"{tmp}/c.v", "--interpretation", interpretation], check=True)
        subprocess.run(["vips", "tiffsave", f"{tmp}/c.v", f"{tmp}/k.tif", "--profile", name], check=True)
        return Image.open(f"{tmp}/k.tif").info["icc_profile"]


def main():
    fallback = builtin_profile("cmyk", 4, "cmyk")
    # The sRGB profile libvips converts to (LittleCMS' own v2 sRGB): the same target, so any
    # difference is in how the conversion is done.
    srgb = ImageCms.ImageCmsProfile(io.BytesIO(builtin_profile("srgb", 3, "srgb")))
    for name in ["cmyk-patches.tif", "cmyk-patches-swop.tif", "cmyk-patches.jpg", "cmyk-patches-swop.jpg"]:
        image = Image.open(os.path.join(FIXTURES, name))
        assert image.mode == "CMYK", (name, image.mode)
        profile = image.info.get("icc_profile") or fallback
        transform = ImageCms.buildTransform(
            ImageCms.ImageCmsProfile(io.BytesIO(profile)), srgb, "CMYK", "RGB",
            renderingIntent=ImageCms.Intent.PERCEPTUAL,
            flags=ImageCms.Flags.BLACKPOINTCOMPENSATION,
        )
        rgb = ImageCms.applyTransform(image, transform)
        # The centre of each 32x32 patch.
        values = [rgb.getpixel((16 + 32 * i, 16)) for i in range(4)]
        print(name, " ".join("%d/%d/%d" % v for v in values))


if __name__ == "__main__":
    sys.exit(main())
