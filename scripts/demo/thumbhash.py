"""ThumbHash placeholder -> picture, with the standard library only.

`to_rgba` is a port of the reference decoder, thumbHashToRGBA from github.com/evanw/thumbhash
(the same algorithm as the Rust `thumbhash` crate the pipeline encodes with); `png` writes the
pixels as an RGBA PNG with zlib and struct, so the demo page can show the placeholder as an
image (a data: URI) without a new dependency.
"""
import base64
import math
import struct
import zlib


def aspect_ratio(h):
    has_alpha = h[2] & 0x80
    is_landscape = h[4] & 0x80
    l_max = 5 if has_alpha else 7
    lx = l_max if is_landscape else h[3] & 7
    ly = h[3] & 7 if is_landscape else l_max
    return lx / ly


def to_rgba(h):
    """Decode a ThumbHash (bytes) to (width, height, RGBA bytes); at most 32x32."""
    if len(h) < 5:
        raise ValueError(f"a ThumbHash has at least 5 bytes, this one {len(h)}")
    header24 = h[0] | (h[1] << 8) | (h[2] << 16)
    header16 = h[3] | (h[4] << 8)
    l_dc = (header24 & 63) / 63
    p_dc = ((header24 >> 6) & 63) / 31.5 - 1
    q_dc = ((header24 >> 12) & 63) / 31.5 - 1
    l_scale = ((header24 >> 18) & 31) / 31
    has_alpha = bool(header24 >> 23)
    p_scale = ((header16 >> 3) & 63) / 63
    q_scale = ((header16 >> 9) & 63) / 63
    is_landscape = bool(header16 >> 15)
    l_max = 5 if has_alpha else 7
    lx = max(3, l_max if is_landscape else header16 & 7)
    ly = max(3, header16 & 7 if is_landscape else l_max)
    a_dc = (h[5] & 15) / 15 if has_alpha else 1.0
    a_scale = (h[5] >> 4) / 15 if has_alpha else 1.0

    # The varying factors, 4 bits each (saturation boosted 1.25x against quantisation).
    ac_start = 6 if has_alpha else 5
    index = 0

    def channel(nx, ny, scale):
        nonlocal index
        ac = []
        for cy in range(ny):
            cx = 0 if cy else 1
            while cx * ny < nx * (ny - cy):
                bits = (h[ac_start + (index >> 1)] >> ((index & 1) << 2)) & 15
                ac.append((bits / 7.5 - 1) * scale)
                index += 1
                cx += 1
        return ac

    l_ac = channel(lx, ly, l_scale)
    p_ac = channel(3, 3, p_scale * 1.25)
    q_ac = channel(3, 3, q_scale * 1.25)
    a_ac = channel(5, 5, a_scale) if has_alpha else []

    ratio = aspect_ratio(h)
    w = round(32 if ratio > 1 else 32 * ratio)
    ht = round(32 / ratio if ratio > 1 else 32)
    out = bytearray(w * ht * 4)
    nfx = max(lx, 5 if has_alpha else 3)
    nfy = max(ly, 5 if has_alpha else 3)
    i = 0
    for y in range(ht):
        fy = [math.cos(math.pi / ht * (y + 0.5) * cy) for cy in range(nfy)]
        for x in range(w):
            fx = [math.cos(math.pi / w * (x + 0.5) * cx) for cx in range(nfx)]
            lum, p, q, a = l_dc, p_dc, q_dc, a_dc
            j = 0
            for cy in range(ly):
                cx = 0 if cy else 1
                while cx * ly < lx * (ly - cy):
                    lum += l_ac[j] * fx[cx] * fy[cy] * 2
                    j += 1
                    cx += 1
            j = 0
            for cy in range(3):
                for cx in range(0 if cy else 1, 3 - cy):
                    f = fx[cx] * fy[cy] * 2
                    p += p_ac[j] * f
                    q += q_ac[j] * f
                    j += 1
            if has_alpha:
                j = 0
                for cy in range(5):
                    for cx in range(0 if cy else 1, 5 - cy):
                        a += a_ac[j] * fx[cx] * fy[cy] * 2
                        j += 1
            b = lum - 2 / 3 * p
            r = (3 * lum - b + q) / 2
            g = r - q
            # The reference stores into a Uint8Array: clamp, then truncate.
            out[i:i + 4] = bytes(int(max(0.0, 255 * min(1.0, c))) for c in (r, g, b, a))
            i += 4
    return w, ht, bytes(out)


def png(w, h, rgba):
    """An 8-bit RGBA PNG (colour type 6, no filter on any row)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + rgba[y * w * 4:(y + 1) * w * 4] for y in range(h))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def data_uri(thumbhash_b64):
    """The placeholder as a data:image/png URI, with its width and height."""
    w, h, rgba = to_rgba(base64.b64decode(thumbhash_b64))
    return "data:image/png;base64," + base64.b64encode(png(w, h, rgba)).decode(), w, h
