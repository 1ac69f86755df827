//! What the first bytes of a file say, read without libvips: used to name a damaged file's
//! format when no loader accepts it, and to read the size a JPEG or HEIF header declares
//! when libvips refuses the header itself.

use super::probe::SourceFormat;

/// The accepted format these bytes start like, from their signature alone.
pub fn signature(bytes: &[u8]) -> Option<SourceFormat> {
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    if starts(&[0xFF, 0xD8, 0xFF]) {
        Some(SourceFormat::Jpeg)
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        Some(SourceFormat::Png)
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Some(SourceFormat::Gif)
    } else if starts(b"II*\0") || starts(b"MM\0*") || starts(b"II+\0") || starts(b"MM\0+") {
        Some(SourceFormat::Tiff)
    } else if starts(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        Some(SourceFormat::Webp)
    } else if bytes.get(4..8) == Some(b"ftyp") {
        let brand = bytes.get(8..12)?;
        [
            &b"heic"[..],
            b"heix",
            b"heim",
            b"heis",
            b"hevc",
            b"mif1",
            b"msf1",
            b"avif",
            b"avis",
        ]
        .contains(&brand)
        .then_some(SourceFormat::Heif)
    } else {
        None
    }
}

/// A JPEG's frame header: its coding process (the SOF marker's number) and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JpegFrame {
    pub process: u8,
    pub width: u32,
    pub height: u32,
}

impl JpegFrame {
    /// SOF3, 7, 11 and 15 are the lossless processes (medical and raw-camera JPEGs).
    pub fn is_lossless(&self) -> bool {
        matches!(self.process, 3 | 7 | 11 | 15)
    }
}

/// Walk a JPEG's markers to its first frame header (SOF0..SOF15, not DHT/JPG/DAC).
pub fn jpeg_frame(bytes: &[u8]) -> Option<JpegFrame> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut pos = 2;
    loop {
        // Markers may be padded with any number of 0xFF bytes.
        while *bytes.get(pos)? == 0xFF && *bytes.get(pos + 1)? == 0xFF {
            pos += 1;
        }
        if *bytes.get(pos)? != 0xFF {
            return None;
        }
        let marker = *bytes.get(pos + 1)?;
        let length = usize::from(u16::from_be_bytes([
            *bytes.get(pos + 2)?,
            *bytes.get(pos + 3)?,
        ]));
        if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            let field = bytes.get(pos + 5..pos + 9)?;
            return Some(JpegFrame {
                process: marker - 0xC0,
                height: u32::from(u16::from_be_bytes([field[0], field[1]])),
                width: u32::from(u16::from_be_bytes([field[2], field[3]])),
            });
        }
        if marker == 0xDA || length < 2 {
            return None; // scan data before any frame header: not a JPEG we can read
        }
        pos += 2 + length;
    }
}

/// The size in a HEIF/AVIF file's first `ispe` (image spatial extents) property.
pub fn heif_extent(bytes: &[u8]) -> Option<(u32, u32)> {
    // Boxes nest (meta > iprp > ipco > ispe); a search for the box type is enough to read a
    // size for an error message, and a wrong hit only changes the numbers quoted.
    let at = bytes.windows(4).position(|w| w == b"ispe")?;
    let field = bytes.get(at + 8..at + 16)?; // after the 4-byte version and flags
    let width = u32::from_be_bytes(field[0..4].try_into().ok()?);
    let height = u32::from_be_bytes(field[4..8].try_into().ok()?);
    Some((width, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg_with_frame(marker: u8, width: u16, height: u16) -> Vec<u8> {
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, b'J', b'F'];
        jpeg.extend_from_slice(&[0xFF, marker, 0x00, 0x0B, 8]);
        jpeg.extend_from_slice(&height.to_be_bytes());
        jpeg.extend_from_slice(&width.to_be_bytes());
        jpeg.extend_from_slice(&[1, 1, 0x11, 0]);
        jpeg
    }

    #[test]
    fn jpeg_frame_is_found_after_other_segments() {
        let frame = jpeg_frame(&jpeg_with_frame(0xC3, 640, 480)).unwrap();
        assert_eq!(
            frame,
            JpegFrame {
                process: 3,
                width: 640,
                height: 480
            }
        );
        assert!(frame.is_lossless());
        assert!(!jpeg_frame(&jpeg_with_frame(0xC2, 1, 1))
            .unwrap()
            .is_lossless());
        // A Huffman table (C4) is not a frame.
        assert_eq!(jpeg_frame(&jpeg_with_frame(0xC4, 1, 1)), None);
        assert_eq!(jpeg_frame(b"\xFF\xD8\xFF"), None);
    }

    #[test]
    fn signatures_name_accepted_formats_only() {
        assert_eq!(signature(b"II*\0\x08\0\0\0"), Some(SourceFormat::Tiff));
        assert_eq!(
            signature(b"\0\0\0\x18ftypavif\0\0\0\0"),
            Some(SourceFormat::Heif)
        );
        assert_eq!(signature(b"\0\0\0\x18ftypisom"), None);
        assert_eq!(signature(b"%PDF-1.4"), None);
    }

    #[test]
    fn heif_extent_reads_the_ispe_box() {
        let mut file = b"\0\0\0\x14ispe\0\0\0\0".to_vec();
        file.extend_from_slice(&20000u32.to_be_bytes());
        file.extend_from_slice(&300u32.to_be_bytes());
        assert_eq!(heif_extent(&file), Some((20000, 300)));
    }
}
