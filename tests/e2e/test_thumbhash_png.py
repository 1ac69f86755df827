"""scripts/demo/thumbhash.py (the demo page's ThumbHash -> PNG) against the binary's own placeholders.

A ThumbHash's DC terms are the picture's average colour, so the decoded placeholder's mean
must be close to the mean of the thumbnail rendered from the same source (measured by
libvips' `vips stats`); and the PNG written must be one libvips reads back, pixel for pixel.
"""
import base64
import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "demo"))
import thumbhash  # noqa: E402


def band_means(path):
    out = path.with_suffix(".stats.csv")
    subprocess.run(["vips", "stats", str(path), str(out)], check=True)
    rows = list(csv.reader(out.read_text().splitlines(), delimiter="\t"))
    return [float(r[4]) for r in rows[1:]]  # row 0: all bands; column 4: mean


@pytest.mark.parametrize("fixture", ["landscape.jpg", "orient6.jpg", "cmyk.jpg", "photo.heic"])
def test_placeholder_decodes_to_the_thumbnails_average_colour(thumbs_bin, tmp_path, fixture):
    subprocess.run([str(thumbs_bin), "render", "--out", str(tmp_path), str(ROOT / "tests/fixtures" / fixture)],
                   check=True, capture_output=True)
    folder = tmp_path / fixture
    manifest = json.loads((folder / "manifest.json").read_text())
    w, h, rgba = thumbhash.to_rgba(base64.b64decode(manifest["placeholder"]))
    assert max(w, h) == 32 and min(w, h) > 0
    src = manifest["source"]
    assert abs(w / h - src["width"] / src["height"]) < 0.5, (w, h, src)
    decoded = [sum(rgba[b::4]) / (w * h) for b in range(3)]
    thumb = next(folder.glob("small*.webp"))
    rendered = band_means(thumb)[:3]
    assert all(abs(d - r) < 12 for d, r in zip(decoded, rendered)), (decoded, rendered)

    png = tmp_path / "placeholder.png"
    png.write_bytes(thumbhash.png(w, h, rgba))
    raw = tmp_path / "placeholder.raw"
    subprocess.run(["vips", "rawsave", str(png), str(raw)], check=True)
    assert raw.read_bytes() == rgba
