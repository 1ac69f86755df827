#!/usr/bin/env python3
"""Reference sRGB colours of the colour-patch fixtures (CMYK, and RGB tagged Display P3 or
Adobe RGB), computed by LittleCMS (through Pillow's ImageCms), not by libvips: perceptual intent
with black-point compensation, the way Photoshop and sharp convert CMYK (for the RGB profiles,
which are matrix-shaper profiles, LittleCMS renders the perceptual intent colorimetrically and
compensation changes nothing: their black is 0). CMYK files without a profile use the engine's
default CMYK profile, libvips' built-in "cmyk" (written out by vips), since that is what "no
profile" means to the engine, and the target is libvips' built-in sRGB profile, the one the
engine converts to. The built-in CMYK profile's numbers depend on the LittleCMS release (2.14/2.16
and 2.19 differ): the version Pillow links is printed first, and tests/render.rs keeps one set per
version.

Usage: scripts/build/cmyk-reference.py  (needs Pillow: pip install Pillow; and vips on PATH)
Prints one line per fixture: the patches' sRGB values, left to right (the centre of each 32x32
patch); tests/render.rs holds a copy of these numbers. The 16-bit PNG is read by Pillow as 8 bits
(its values are 8-bit values times 257, so nothing is lost).
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


def reference(name, fallback, srgb):
    """The sRGB patch centres LittleCMS makes of one fixture."""
    image = Image.open(os.path.join(FIXTURES, name))
    mode = "CMYK" if image.mode == "CMYK" else "RGB"
    image = image.convert(mode)  # a 16-bit RGB PNG opens as 8-bit RGB already
    profile = image.info.get("icc_profile") or fallback
    transform = ImageCms.buildTransform(
        ImageCms.ImageCmsProfile(io.BytesIO(profile)), srgb, mode, "RGB",
        renderingIntent=ImageCms.Intent.PERCEPTUAL,
        flags=ImageCms.Flags.BLACKPOINTCOMPENSATION,
    )
    rgb = ImageCms.applyTransform(image, transform)
    return [rgb.getpixel((16 + 32 * i, 16)) for i in range(image.width // 32)]


def main():
    print("LittleCMS", ImageCms.core.littlecms_version)
    # The engine's default for CMYK without a profile (src/vips/mod.rs, icc_to_srgb).
    fallback = builtin_profile("cmyk", 4, "cmyk")
    # The sRGB profile libvips converts to (LittleCMS' own v2 sRGB): the same target, so any
    # difference is in how the conversion is done.
    srgb = ImageCms.ImageCmsProfile(io.BytesIO(builtin_profile("srgb", 3, "srgb")))
    for name in ["cmyk-patches.tif", "cmyk-patches-swop.tif", "cmyk-patches.jpg", "cmyk-patches-swop.jpg",
                 "rgb-patches-p3.png", "rgb-patches-p3.jpg", "rgb16-patches-p3.png",
                 "rgb-patches-adobe.png", "rgb-patches-adobe.jpg"]:
        print(name, " ".join("%d/%d/%d" % v for v in reference(name, fallback, srgb)))

if __name__ == "__main__":
    sys.exit(main())
