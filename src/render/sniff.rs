//! What the first bytes of a file say, read without libvips: which accepted format (and so
//! which one loader) it is, what a refused file is, and the size a JPEG or HEIF header
//! declares when libvips refuses the header itself.

use crate::vips::Loader;

/// The accepted format these bytes start like, from their signature alone.
pub fn signature(bytes: &[u8]) -> Option<Loader> {
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    if starts(&[0xFF, 0xD8, 0xFF]) {
        Some(Loader::Jpeg)
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        Some(Loader::Png)
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Some(Loader::Gif)
    } else if starts(b"II*\0") || starts(b"MM\0*") || starts(b"II+\0") || starts(b"MM\0+") {
        Some(Loader::Tiff)
    } else if starts(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        Some(Loader::Webp)
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
        .then_some(Loader::Heif)
    } else {
        None
    }
}

/// What a refused file is, in the uploader's words ("SVG files"), from its first bytes: said
/// in the refusal so they know what they sent. Files named here are never given to libvips.
pub fn foreign_kind(bytes: &[u8]) -> &'static str {
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    let head = &bytes[..bytes.len().min(1024)];
    let text_has = |needle: &[u8]| head.windows(needle.len()).any(|w| w == needle);
    if starts(b"%PDF") {
        "PDF files"
    } else if starts(&[0x1F, 0x8B]) {
        "gzip-compressed files (such as .svgz)"
    } else if text_has(b"<svg") {
        "SVG files"
    } else if starts(b"\0\0\0\x0cjP  \r\n\x87\n") || starts(&[0xFF, 0x4F, 0xFF, 0x51]) {
        "JPEG 2000 files"
    } else if starts(b"\0\0\0\x0cJXL \r\n\x87\n") || starts(&[0xFF, 0x0A]) {
        "JPEG XL files"
    } else if starts(&[0x76, 0x2F, 0x31, 0x01]) {
        "OpenEXR files"
    } else if starts(b"SIMPLE  =") {
        "FITS files"
    } else if starts(b"#?RADIANCE") || starts(b"#?RGBE") {
        "Radiance files"
    } else if starts(b"8BPS") {
        "Photoshop files"
    } else if starts(b"BM") {
        "BMP files"
    } else if bytes.len() > 2
        && bytes[0] == b'P'
        && b"1234567Ff".contains(&bytes[1])
        && bytes[2].is_ascii_whitespace()
    {
        "PPM files"
    } else {
        "files of this kind"
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
        assert_eq!(signature(b"II*\0\x08\0\0\0"), Some(Loader::Tiff));
        assert_eq!(signature(b"\0\0\0\x18ftypavif\0\0\0\0"), Some(Loader::Heif));
        assert_eq!(signature(b"\0\0\0\x18ftypisom"), None);
        assert_eq!(signature(b"%PDF-1.4"), None);
    }

    #[test]
    fn refused_files_are_named_from_their_bytes() {
        assert_eq!(
            foreign_kind(b"<?xml version=\"1.0\"?>\n<svg xmlns="),
            "SVG files"
        );
        assert_eq!(foreign_kind(b"%PDF-1.4"), "PDF files");
        assert_eq!(
            foreign_kind(&[0x1F, 0x8B, 8, 0]),
            "gzip-compressed files (such as .svgz)"
        );
        assert_eq!(foreign_kind(b"P6\n1 1\n255\n"), "PPM files");
        assert_eq!(foreign_kind(b"just text"), "files of this kind");
    }

    #[test]
    fn heif_extent_reads_the_ispe_box() {
        let mut file = b"\0\0\0\x14ispe\0\0\0\0".to_vec();
        file.extend_from_slice(&20000u32.to_be_bytes());
        file.extend_from_slice(&300u32.to_be_bytes());
        assert_eq!(heif_extent(&file), Some((20000, 300)));
    }
}
