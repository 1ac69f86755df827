//! Remove metadata chunks from a WebP file. Debian's libvips 8.14.1 webpsave ignores `strip`
//! and always writes an EXIF chunk (and the ICC profile, if the image has one); we drop the
//! `EXIF`, `XMP ` and `ICCP` chunks and their flags so no version can leak them.

const FLAG_ICC: u8 = 0x20;
const FLAG_EXIF: u8 = 0x08;
const FLAG_XMP: u8 = 0x04;

/// Return `webp` without metadata chunks; input that is not a well-formed RIFF/WEBP file is
/// returned unchanged (it came from libvips, so that would be a libvips bug, not ours to hide).
pub fn strip_metadata(webp: Vec<u8>) -> Vec<u8> {
    if webp.len() < 12 || &webp[0..4] != b"RIFF" || &webp[8..12] != b"WEBP" {
        return webp;
    }
    let mut out = Vec::with_capacity(webp.len());
    out.extend_from_slice(&webp[0..12]);
    let mut pos = 12;
    while pos + 8 <= webp.len() {
        let fourcc = &webp[pos..pos + 4];
        let size = u32::from_le_bytes(webp[pos + 4..pos + 8].try_into().expect("4 bytes")) as usize;
        let end = pos + 8 + size + (size & 1);
        if end > webp.len() {
            return webp; // malformed: leave it alone
        }
        match fourcc {
            b"EXIF" | b"XMP " | b"ICCP" => {}
            b"VP8X" if size >= 1 => {
                let start = out.len();
                out.extend_from_slice(&webp[pos..end]);
                out[start + 8] &= !(FLAG_ICC | FLAG_EXIF | FLAG_XMP);
            }
            _ => out.extend_from_slice(&webp[pos..end]),
        }
        pos = end;
    }
    let riff_size = (out.len() - 8) as u32;
    out[4..8].copy_from_slice(&riff_size.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(fourcc: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut c = fourcc.to_vec();
        c.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        c.extend_from_slice(payload);
        if payload.len() % 2 == 1 {
            c.push(0);
        }
        c
    }

    fn riff(chunks: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = chunks.concat();
        let mut f = b"RIFF".to_vec();
        f.extend_from_slice(&((body.len() + 4) as u32).to_le_bytes());
        f.extend_from_slice(b"WEBP");
        f.extend_from_slice(&body);
        f
    }

    #[test]
    fn metadata_chunks_and_flags_are_removed_and_the_rest_kept() {
        let vp8x = [
            FLAG_ICC | FLAG_EXIF | FLAG_XMP | 0x10,
            0,
            0,
            0,
            9,
            0,
            0,
            9,
            0,
            0,
        ];
        let input = riff(&[
            chunk(b"VP8X", &vp8x),
            chunk(b"ICCP", b"profile"),
            chunk(b"ALPH", b"alpha"),
            chunk(b"VP8 ", b"pixels"),
            chunk(b"EXIF", b"Exif\0\0gps"),
            chunk(b"XMP ", b"<x/>"),
        ]);
        let mut vp8x_clean = vp8x;
        vp8x_clean[0] = 0x10; // alpha stays
        let expected = riff(&[
            chunk(b"VP8X", &vp8x_clean),
            chunk(b"ALPH", b"alpha"),
            chunk(b"VP8 ", b"pixels"),
        ]);
        assert_eq!(strip_metadata(input), expected);
    }

    #[test]
    fn non_webp_and_truncated_input_is_left_alone() {
        assert_eq!(strip_metadata(b"not webp".to_vec()), b"not webp");
        let mut truncated = riff(&[chunk(b"VP8 ", b"pixels")]);
        truncated.truncate(truncated.len() - 2);
        assert_eq!(strip_metadata(truncated.clone()), truncated);
    }
}
