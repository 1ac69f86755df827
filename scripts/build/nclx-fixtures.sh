#!/usr/bin/env bash
# Make the nclx colour fixtures (issue 20, colour): HEIC and AVIF whose colour is given only by
# an nclx box (CICP code points of ITU-T H.273: primaries/transfer/matrix), no ICC profile.
# The pixels come from two known PNGs written here, so anyone can remake them:
#  - 8 SDR patches (the wide-gamut RGB fixtures' colours plus a Display P3 green 30/200/40),
#    tagged Display P3 (12/13/6: primaries SMPTE EG 432, sRGB transfer, BT.601 matrix, what
#    phones write) and Rec.2020 SDR (9/14/9, BT.2020 10-bit transfer);
#  - 8 HDR patches given as 16-bit signal values (see PATCHES_HDR), 10-bit, Rec.2020 PQ
#    (9/16/9) and Rec.2020 HLG (9/18/9).
# Near-lossless (AV1 quantizer 0, HEVC quality 100, 4:4:4), so each patch stays flat.
# Encoders: Debian 12's avifenc (libavif-bin 0.11.1, aom) and Debian 13's heif-enc
# (libheif-examples 1.23.6, x265, unpacked into target/heif-tools-trixie): Debian 12's heif-enc
# 1.15.1 writes no nclx box for HEIC and 2/2 (unspecified) primaries/transfer for AVIF, whatever
# its options say. Reference colours: scripts/build/nclx-reference.py.
# Usage: scripts/build/nclx-fixtures.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/setup/apt.sh libavif-bin python3
read -r debian _ <<<"$(scripts/setup/debian-mirror.sh)"
tools=$(scripts/setup/debian-root.sh target/heif-tools-trixie amd64 "$debian trixie main" -- \
  libheif-examples libheif-plugin-x265 libc6)
lib=$tools/usr/lib/x86_64-linux-gnu
heif_enc() {
  LIBHEIF_PLUGIN_PATH=$lib/libheif/plugins "$lib/ld-linux-x86-64.so.2" --inhibit-cache \
    --library-path "$lib" "$tools/usr/bin/heif-enc" "$@"
}
out=tests/fixtures
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 256x32 RGB PNGs of eight 32x32 patches, 8-bit or 16-bit, from python3's standard library.
python3 - "$tmp" <<'PY'
import struct, sys, zlib
SDR = [(30, 200, 40), (255, 0, 0), (0, 0, 255), (224, 172, 140), (90, 150, 210), (40, 40, 40), (128, 128, 128), (220, 220, 220)]
# Signal values (0..1) for the HDR patches: PQ 0.58 is 203 cd/m2 (BT.2408 reference white),
# 0.75 is 1000 cd/m2, 0.51 about 100, 0.30 about 10; then a green, a skin tone, a sky blue
# and a bright saturated red.
HDR = [(0.58, 0.58, 0.58), (0.75, 0.75, 0.75), (0.51, 0.51, 0.51), (0.30, 0.30, 0.30),
       (0.40, 0.58, 0.30), (0.62, 0.50, 0.45), (0.35, 0.45, 0.60), (0.70, 0.20, 0.20)]
def png(path, patches, depth):
    pack = (lambda v: bytes([v])) if depth == 8 else (lambda v: struct.pack(">H", v))
    row = b"".join(pack(v) for p in patches for _ in range(32) for v in p)
    raw = b"".join(b"\0" + row for _ in range(32))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    ihdr = struct.pack(">IIBBBBB", 32 * len(patches), 32, depth, 2, 0, 0, 0)
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
png(sys.argv[1] + "/sdr.png", SDR, 8)
png(sys.argv[1] + "/hdr.png", [tuple(round(v * 65535) for v in p) for p in HDR], 16)
PY

avif() { avifenc -y 444 --min 0 --max 0 -s 6 "$@" >/dev/null; }
avif --cicp 12/13/6 "$tmp/sdr.png" "$out/nclx-p3.avif"
avif -d 10 --cicp 9/14/9 "$tmp/sdr.png" "$out/nclx-rec2020.avif"
avif -d 10 --cicp 9/16/9 "$tmp/hdr.png" "$out/nclx-rec2020-pq.avif"
avif -d 10 --cicp 9/18/9 "$tmp/hdr.png" "$out/nclx-rec2020-hlg.avif"
heic() { heif_enc -q 100 -p chroma=444 "$@" >/dev/null; }
heic --colour_primaries 12 --transfer_characteristic 13 --matrix_coefficients 6 \
  -o "$out/nclx-p3.heic" "$tmp/sdr.png"
heic -b 10 --colour_primaries 9 --transfer_characteristic 16 --matrix_coefficients 9 \
  -o "$out/nclx-rec2020-pq.heic" "$tmp/hdr.png"
