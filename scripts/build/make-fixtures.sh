#!/usr/bin/env bash
# Regenerate tests/fixtures/ from freely licensed photos in Debian packages (tests/fixtures/SOURCES.md).
# Safe to run twice; output is deterministic for the
# same Debian package versions, except the HEVC/AV1 encoders may differ by a few bytes.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/setup/apt.sh libvips-tools libimage-exiftool-perl libheif-examples libavif-bin gifsicle webp python3

out=tests/fixtures
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"

mapfile -t src < <(scripts/build/corpus.sh extract lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 libgs-common icc-profiles-free)
bg16=${src[0]}/root/usr/share/backgrounds
bg20=${src[1]}/root/usr/share/backgrounds
cmyk_icc=${src[2]}/root/usr/share/color/icc/ghostscript/default_cmyk.icc
adobe_icc=${src[3]}/root/usr/share/color/icc/compatibleWithAdobeRGB1998.icc

# Quiet, reproducible vips: no EXIF resolution warnings, no timestamps in PNG.
export VIPS_WARNING=0

# Photo scaled and centre-cropped to exactly WxH, converted to sRGB with libvips' built-in sRGB profile attached.
fit() { vips thumbnail "$1" "$2" "$3" --height "$4" --crop centre --export-profile srgb; }

# --- colour photos ---------------------------------------------------------------
fit "$bg16/sunset_by_Aitzol_Berasategi.jpg" "$tmp/landscape.v" 1200 800
vips jpegsave "$tmp/landscape.v" "$out/landscape.jpg" --Q 80 --optimize-coding
# Synthetic camera EXIF incl. GPS, so tests can check that metadata is stripped.
exiftool -q -overwrite_original \
  -Make=FixtureCam -Model='Fixture 1' -DateTimeOriginal='2018:06:21 21:30:00' \
  -Artist='Aitzol Berasategi' -Copyright='CC-BY-4.0 Aitzol Berasategi' \
  -GPSLatitude=43.0167 -GPSLatitudeRef=N -GPSLongitude=2.3333 -GPSLongitudeRef=W \
  -GPSAltitude=1528 -GPSAltitudeRef=0 "$out/landscape.jpg"

# Upright content is portrait (two dogs at a window); the stored pixels are turned so that
# only a reader honouring EXIF Orientation shows them upright.
fit "$bg16/friends_by_Aitzol_Berasategi.jpg" "$tmp/portrait.v" 800 1200
vips rot "$tmp/portrait.v" "$tmp/orient6.v" d270 # Orientation 6: display = rotate 90 CW
vips rot "$tmp/portrait.v" "$tmp/orient8.v" d90  # Orientation 8: display = rotate 90 CCW
for o in 6 8; do
  vips jpegsave "$tmp/orient$o.v" "$out/orient$o.jpg" --Q 75 --optimize-coding --strip
  exiftool -q -overwrite_original -n -Orientation="$o" "$out/orient$o.jpg"
done

# CMYK: a blue-sky photo through Ghostscript's SWOP profile, which stays embedded.
fit "$bg16/Bridge_by_Sander_Klootwijk.jpg" "$tmp/bridge.v" 600 338
vips icc_export "$tmp/bridge.v" "$tmp/cmyk.v" --output-profile "$cmyk_icc"
vips jpegsave "$tmp/cmyk.v" "$out/cmyk.jpg" --Q 80 --optimize-coding
vips jpegsave "$tmp/bridge.v" "$tmp/bridge-srgb.jpg" --Q 95 # for the SOURCES.md mean colour

# Greyscale 8-bit JPEG, 16-bit grey and RGB PNGs (from an 8-bit photo: values v*257).
fit "$bg16/life_by_Aitzol_Berasategi.jpg" "$tmp/life.v" 720 480
vips colourspace "$tmp/life.v" "$tmp/grey.v" b-w
vips jpegsave "$tmp/grey.v" "$out/grey.jpg" --Q 80 --optimize-coding --strip
fit "$bg16/life_by_Aitzol_Berasategi.jpg" "$tmp/life-s.v" 300 200
vips colourspace "$tmp/life-s.v" "$tmp/grey16.v" grey16
vips pngsave "$tmp/grey16.v" "$out/grey16.png" --compression 9 --strip
fit "$bg16/picosdeeuropa_by_Aitzol_Berasategi.jpg" "$tmp/picos-s.v" 240 180
vips colourspace "$tmp/picos-s.v" "$tmp/rgb16.v" rgb16
vips pngsave "$tmp/rgb16.v" "$out/rgb16.png" --compression 9 --strip

# RGBA: paint brushes inside an opaque disc, fully transparent outside it.
fit "$bg16/Picture_1A_by_freespace.jpg" "$tmp/brushes.v" 300 200
python3 - "$tmp/mask.pgm" 300 200 <<'EOF'
import sys
path, w, h = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r2 = (min(w, h) * 0.45) ** 2
rows = bytes(255 if (x - w / 2 + 0.5) ** 2 + (y - h / 2 + 0.5) ** 2 <= r2 else 0
             for y in range(h) for x in range(w))
open(path, "wb").write(b"P5 %d %d 255\n" % (w, h) + rows)
EOF
vips bandjoin "$tmp/brushes.v $tmp/mask.pgm" "$tmp/alpha.v"
vips pngsave "$tmp/alpha.v" "$out/alpha.png" --compression 9 --strip

# Animations: three 320x240 frames, solid red, green, blue (in that order), 200 ms each.
frames=()
for c in "255 0 0" "0 255 0" "0 0 255"; do
  n=${#frames[@]}
  vips black "$tmp/black.v" 320 240 --bands 3
  vips linear "$tmp/black.v" "$tmp/f$n.v" "1 1 1" "$c" --uchar
  vips pngsave "$tmp/f$n.v" "$tmp/f$n.png" --strip
  vips gifsave "$tmp/f$n.v" "$tmp/f$n.gif"
  frames+=("$tmp/f$n")
done
gifsicle --no-warnings --loopcount=forever --delay 20 "${frames[@]/%/.gif}" >"$out/animated.gif"
img2webp -loop 0 -lossless -d 200 "${frames[@]/%/.png}" -o "$out/animated.webp" 2>/dev/null
# An AVIF image sequence (brand avis; libavif writes the first frame as the primary item too).
avifenc --fps 5 -s 10 "${frames[@]/%/.png}" -o "$out/animated.avif" >/dev/null

# Other encodings of one photo (mountain meadow).
fit "$bg16/aitzgorri_by_Aitzol_Berasategi.jpg" "$tmp/photo.v" 800 533
vips jpegsave "$tmp/photo.v" "$tmp/photo.jpg" --Q 90 --strip
vips webpsave "$tmp/photo.v" "$out/photo.webp" --Q 75 --strip
vips tiffsave "$tmp/photo.v" "$out/photo.tiff" --compression jpeg --Q 80 --strip
heif-enc -q 50 -o "$out/photo.heic" "$tmp/photo.jpg" >/dev/null
heif-enc -A -q 50 -o "$out/photo.avif" "$tmp/photo.jpg" >/dev/null
vips jpegsave "$tmp/portrait.v" "$tmp/portrait.jpg" --Q 90 --strip
heif-enc -q 50 -o "$out/portrait.heic" "$tmp/portrait.jpg" >/dev/null
fit "$bg16/Dragonfly_by_Bolly.jpg" "$tmp/dragonfly.v" 800 600
vips jpegsave "$tmp/dragonfly.v" "$out/progressive.jpg" --Q 80 --interlace --optimize-coding --strip

# --- bad inputs ------------------------------------------------------------------
: >"$out/empty.jpg"
vips jpegsave "$tmp/photo.v" "$tmp/baseline.jpg" --Q 80 --optimize-coding --strip
head -c "$(($(stat -c %s "$tmp/baseline.jpg") / 2))" "$tmp/baseline.jpg" >"$out/truncated.jpg"
printf 'This is plain text, not a JPEG.\n' >"$out/text.jpg"
# 185 bytes like libvips' own test-suite/images/truncated.svgz: a gzip stream of an SVG cut short,
# then more SVG text outside the stream (8.14.1's SVG sniffer loops forever on it).
python3 - >"$out/truncated.svgz" <<'EOF'
import gzip, sys
svg = (b'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" '
       b'width="640" height="480"><rect width="640" height="480" fill="#3a6"/>')
sys.stdout.buffer.write((gzip.compress(svg, mtime=0) + b"<circle r='9'/></svg>\n" * 8)[:185])
EOF
fit "$bg20/Kleiber_by_Lukas_Baubkus.jpg" "$tmp/kleiber.v" 640 360
vips jpegsave "$tmp/kleiber.v" "$out/mislabelled.png" --Q 80 --optimize-coding --strip
vips black "$tmp/tiny.v" 16 16 --bands 3
vips jpegsave "$tmp/tiny.v" "$tmp/tiny.jpg" --strip
python3 - "$out" "$tmp/tiny.jpg" <<'EOF'
import struct, sys, zlib
out, tiny = sys.argv[1], sys.argv[2]

# GIF whose screen and only frame declare 65535x65535, with a 2-colour table.
gif = (b"GIF89a" + struct.pack("<HHBBB", 65535, 65535, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
       + b"\x2c" + struct.pack("<HHHHB", 0, 0, 65535, 65535, 0) + b"\x02\x02\x4c\x01\x00\x3b")
open(f"{out}/bomb.gif", "wb").write(gif)

# 16x16 baseline JPEG whose SOF0 is patched to declare 64250x64250.
jpg = bytearray(open(tiny, "rb").read())
sof = jpg.index(b"\xff\xc0")
jpg[sof + 5:sof + 9] = struct.pack(">HH", 64250, 64250)
open(f"{out}/bomb.jpg", "wb").write(jpg)

# Complete, valid 1-bit greyscale PNG of 20000x20000 zero pixels: 50 MB of rows deflate to ~50 KB.
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
w = h = 20000
z = zlib.compressobj(9)
row = bytes(1 + w // 8)
idat = b"".join(z.compress(row) for _ in range(h)) + z.flush()
png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0))
       + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
open(f"{out}/bomb.png", "wb").write(png)

# GIF whose header says 100x100 but whose first frame starts at x=65500 (100 wide): libnsgif
# grows the canvas to 65600 wide for it, libvips refuses a canvas over 65536 a side, and
# libnsgif reports that as "Out of memory" (a damaged file, not a shortage).
gif = (b"GIF89a" + struct.pack("<HHBBB", 100, 100, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
       + b"\x2c" + struct.pack("<HHHHB", 65500, 0, 100, 100, 0) + b"\x02\x02\x4c\x01\x00\x3b")
open(f"{out}/frame-outside.gif", "wb").write(gif)

# One-page PDF with a line of text; xref offsets computed, so it is well formed.
objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        None,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
text = b"BT /F1 18 Tf 20 40 Td (thumbs fixture) Tj ET"
objs[3] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text)
pdf, offsets = bytearray(b"%PDF-1.4\n"), []
for i, body in enumerate(objs, 1):
    offsets.append(len(pdf))
    pdf += b"%d 0 obj\n%s\nendobj\n" % (i, body)
xref = len(pdf)
pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
pdf += b"".join(b"%010d 00000 n \n" % o for o in offsets)
pdf += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
open(f"{out}/doc.pdf", "wb").write(pdf)
EOF
cat >"$out/image.svg" <<'EOF'
<svg xmlns="http://www.w3.org/2000/svg" width="400" height="300" viewBox="0 0 400 300">
  <rect width="400" height="300" fill="#2a6"/>
  <circle cx="200" cy="150" r="100" fill="#fc3"/>
</svg>
EOF

# --- CMYK colour patches and extra channels (engine checks) ----------------------------
# Four 32x32 solid CMYK patches (K100 black, rich black, M100+Y100 red, a light blue-grey):
# with Ghostscript's SWOP profile embedded and without any profile (libvips then uses its
# built-in CMYK profile), as TIFF and as JPEG. scripts/build/cmyk-reference.py computes what
# LittleCMS makes of the same numbers; tests/render.rs compares against those.
python3 - "$tmp/patches.raw" <<'EOF'
import sys
patches = [(0, 0, 0, 255), (191, 173, 171, 230), (0, 255, 255, 0), (102, 26, 0, 51)]
row = b"".join(bytes(p) * 32 for p in patches)
open(sys.argv[1], "wb").write(row * 32)
EOF
vips rawload "$tmp/patches.raw" "$tmp/patches0.v" 128 32 4
vips copy "$tmp/patches0.v" "$tmp/patches.v" --interpretation cmyk
vips tiffsave "$tmp/patches.v" "$out/cmyk-patches.tif" --strip
vips tiffsave "$tmp/patches.v" "$out/cmyk-patches-swop.tif" --profile "$cmyk_icc"
vips jpegsave "$tmp/patches.v" "$out/cmyk-patches.jpg" --Q 100 --strip
vips jpegsave "$tmp/patches.v" "$out/cmyk-patches-swop.jpg" --Q 100 --profile "$cmyk_icc"
# RGB + alpha + one more channel, as libvips writes it (ExtraSamples: alpha, unspecified).
vips extract_area "$out/landscape.jpg" "$tmp/crop.v" 0 0 96 64
vips extract_band "$tmp/crop.v" "$tmp/green.v" 1
vips bandjoin "$tmp/crop.v $tmp/green.v $tmp/green.v" "$tmp/extra.v" # alpha varies, so it is kept
vips tiffsave "$tmp/extra.v" "$out/extra-channel.tif" --strip

# --- RGB with a wide-gamut profile (engine checks) ------------------------------------
# Eight 32x32 solid patches, left to right: red, green, blue, a skin tone, a sky blue, dark,
# mid and light grey; tagged Display P3 (iPhones) or Adobe RGB (1998) (cameras), as PNG and
# JPEG, plus a 16-bit PNG (values v*257). scripts/build/cmyk-reference.py computes what LittleCMS
# makes of them in sRGB; tests/render.rs compares against those numbers.
# Display P3 is not in Debian's profile packages: LittleCMS (the liblcms2 libvips links)
# builds it from its published primaries, D65 white and the sRGB curve, as Apple's v4 one is.
python3 - "$tmp/p3.icc" <<'EOF'
import ctypes, sys
lcms = ctypes.CDLL("liblcms2.so.2")
class XyY(ctypes.Structure):
    _fields_ = [("x", ctypes.c_double), ("y", ctypes.c_double), ("Y", ctypes.c_double)]
class Primaries(ctypes.Structure):
    _fields_ = [("red", XyY), ("green", XyY), ("blue", XyY)]
vp = ctypes.c_void_p
lcms.cmsBuildParametricToneCurve.restype = vp
lcms.cmsBuildParametricToneCurve.argtypes = [vp, ctypes.c_int, ctypes.POINTER(ctypes.c_double)]
lcms.cmsCreateRGBProfile.restype = vp
lcms.cmsCreateRGBProfile.argtypes = [ctypes.POINTER(XyY), ctypes.POINTER(Primaries), vp * 3]
lcms.cmsMLUalloc.restype = vp
lcms.cmsMLUalloc.argtypes = [vp, ctypes.c_uint]
lcms.cmsMLUsetASCII.argtypes = [vp, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p]
lcms.cmsWriteTag.argtypes = [vp, ctypes.c_uint, vp]
lcms.cmsSaveProfileToFile.argtypes = [vp, ctypes.c_char_p]
# IEC 61966-2.1 (the sRGB curve) is LittleCMS' parametric curve type 4.
curve = lcms.cmsBuildParametricToneCurve(
    None, 4, (ctypes.c_double * 5)(2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045))
profile = lcms.cmsCreateRGBProfile(
    XyY(0.3127, 0.3290, 1.0),
    Primaries(XyY(0.680, 0.320, 1), XyY(0.265, 0.690, 1), XyY(0.150, 0.060, 1)),
    (vp * 3)(curve, curve, curve))
for tag, text in [(0x64657363, b"Display P3 (thumbs fixture, LittleCMS)"),  # desc
                  (0x63707274, b"No copyright, use freely")]:  # cprt
    mlu = lcms.cmsMLUalloc(None, 1)
    lcms.cmsMLUsetASCII(mlu, b"en", b"US", text)
    lcms.cmsWriteTag(profile, tag, mlu)
assert lcms.cmsSaveProfileToFile(profile, sys.argv[1].encode())
# A fixed creation date (header bytes 24-35) instead of now, so reruns give the same bytes.
icc = bytearray(open(sys.argv[1], "rb").read())
icc[24:36] = bytes([0x07, 0xEA, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0])  # 2026-01-01 00:00:00
open(sys.argv[1], "wb").write(icc)
EOF
python3 - "$tmp/rgb-patches.raw" "$tmp/rgb16-patches.raw" <<'EOF'
import struct, sys
patches = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (224, 172, 140), (90, 150, 210),
           (40, 40, 40), (128, 128, 128), (220, 220, 220)]
open(sys.argv[1], "wb").write(b"".join(bytes(p) * 32 for p in patches) * 32)
row16 = b"".join(struct.pack("<3H", *(v * 257 for v in p)) * 32 for p in patches)
open(sys.argv[2], "wb").write(row16 * 32)
EOF
vips rawload "$tmp/rgb-patches.raw" "$tmp/rgb-patches0.v" 256 32 3
vips copy "$tmp/rgb-patches0.v" "$tmp/rgb-patches.v" --interpretation srgb
vips rawload "$tmp/rgb16-patches.raw" "$tmp/rgb16-patches0.v" 256 32 3 --format ushort
vips copy "$tmp/rgb16-patches0.v" "$tmp/rgb16-patches.v" --interpretation rgb16
for tag in p3 adobe; do
  icc=$tmp/p3.icc
  [ "$tag" = p3 ] || icc=$adobe_icc
  vips pngsave "$tmp/rgb-patches.v" "$out/rgb-patches-$tag.png" --compression 9 --profile "$icc"
  vips jpegsave "$tmp/rgb-patches.v" "$out/rgb-patches-$tag.jpg" --Q 100 --profile "$icc"
done
vips pngsave "$tmp/rgb16-patches.v" "$out/rgb16-patches-p3.png" --compression 9 --profile "$tmp/p3.icc"

# --- AVIF with alpha whose colour is turned but whose alpha is not (engine checks) ----------
# 96x64 RGBA: an opaque red 32x32 square in the top-left corner, transparent green elsewhere.
# libavif before 1.0 (Debian 12's avifenc 0.11) writes --irot/--imir on the colour item only;
# lossless, so the hidden green survives for the decoder to show if alpha goes astray.
python3 - "$tmp/corner.png" <<'EOF'
import struct, sys, zlib
w, h = 96, 64
rows = b"".join(b"\0" + b"".join(bytes((255, 0, 0, 255)) if x < 32 and y < 32 else bytes((0, 255, 0, 0))
                                   for x in range(w)) for y in range(h))
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))
                              + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))
EOF
avifenc -l -s 10 --irot 2 "$tmp/corner.png" "$out/alpha-irot180.avif" >/dev/null
avifenc -l -s 10 --irot 1 --imir 0 "$tmp/corner.png" "$out/alpha-irot90-imir.avif" >/dev/null

# --- summary (the table in SOURCES.md) ----------------------------------------------
for f in "$out"/*; do
  case $f in *.md) continue ;; esac
  if hdr=$(vipsheader -f width "$f" 2>/dev/null); then
    printf '%-18s %7d B  %sx%s bands=%s %s %s\n' "${f##*/}" "$(stat -c %s "$f")" "$hdr" \
      "$(vipsheader -f height "$f")" "$(vipsheader -f bands "$f")" \
      "$(vipsheader -f format "$f" | sed -E 's/.*VIPS_FORMAT_([A-Z0-9]+).*/\1/' | tr '[:upper:]' '[:lower:]')" "$(vipsheader -f vips-loader "$f")"
  else
    printf '%-18s %7d B  (not loadable by vips)\n' "${f##*/}" "$(stat -c %s "$f")"
  fi
done
