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

/// One ISO BMFF box: its type, where it starts and its whole length (header included).
#[derive(Clone, Copy)]
struct BmffBox {
    kind: [u8; 4],
    start: usize,
    len: usize,
}

/// The boxes laid end to end in `bytes[start..end]`; `None` at a size that does not fit (or a
/// 64-bit or to-the-end size, which the boxes edited here never have).
fn boxes(bytes: &[u8], start: usize, end: usize) -> Option<Vec<BmffBox>> {
    let mut found = Vec::new();
    let mut at = start;
    while at < end {
        let len = be(bytes.get(at..at + 4)?) as usize;
        let kind: [u8; 4] = bytes.get(at + 4..at + 8)?.try_into().ok()?;
        if len < 8 || at + len > end {
            return None;
        }
        found.push(BmffBox {
            kind,
            start: at,
            len,
        });
        at += len;
    }
    Some(found)
}

fn find(boxes: &[BmffBox], kind: &[u8; 4]) -> Option<BmffBox> {
    boxes.iter().copied().find(|b| &b.kind == kind)
}

/// A big-endian unsigned number of 0 to 8 bytes.
fn be(field: &[u8]) -> u64 {
    field.iter().fold(0, |n, &b| (n << 8) | u64::from(b))
}

/// A HEIF/AVIF whose primary image is turned or mirrored (`irot`/`imir`) while its alpha image
/// is not, rewritten so the alpha image carries the same transforms; `None` when the file is
/// not like that (or is laid out in a way this does not edit: image sequences, 64-bit sizes).
///
/// HEIF (ISO/IEC 23008-12) transforms each image by its own properties, and libavif before 1.0
/// wrote `irot`/`imir` on the colour item only; libavif itself applies the colour item's
/// transforms to alpha (its test files abc_color_irot_alpha_NOirot.avif / _irot.avif). libheif
/// 1.15 (Debian 12) turns each plane by its own: the mask stayed unturned under a turned
/// picture (a ghost at 180 degrees; at 90 degrees the sizes differ and alpha was dropped).
/// Giving the alpha item the colour item's transforms is what libavif 1.x writes, which every
/// libheif reads right.
pub fn heif_alpha_turned_with_colour(bytes: &[u8]) -> Option<Vec<u8>> {
    let top = boxes(bytes, 0, bytes.len())?;
    if find(&top, b"moov").is_some() {
        return None; // a sequence's track offsets would need the same edit
    }
    let meta = find(&top, b"meta")?;
    let inner = boxes(bytes, meta.start + 12, meta.start + meta.len)?;
    let primary = {
        let pitm = find(&inner, b"pitm")?;
        let wide = *bytes.get(pitm.start + 8)? > 0;
        be(bytes.get(pitm.start + 12..pitm.start + if wide { 16 } else { 14 })?)
    };
    let iprp = find(&inner, b"iprp")?;
    let iprp_inner = boxes(bytes, iprp.start + 8, iprp.start + iprp.len)?;
    let ipco = find(&iprp_inner, b"ipco")?;
    let properties = boxes(bytes, ipco.start + 8, ipco.start + ipco.len)?;
    let ipma = find(&iprp_inner, b"ipma")?;
    let associations = ipma_entries(bytes, ipma)?;
    let wide = ipma_index_is_wide(bytes, ipma)?;
    let is_transform = |index: u16| {
        properties
            .get(usize::from(index).checked_sub(1)?)
            .map(|p| &p.kind == b"irot" || &p.kind == b"imir")
    };
    let is_alpha = |index: u16| -> Option<bool> {
        let p = properties.get(usize::from(index).checked_sub(1)?)?;
        let body = bytes.get(p.start + 12..p.start + p.len)?;
        Some(
            &p.kind == b"auxC"
                && (body.starts_with(b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha")
                    || body.starts_with(b"urn:mpeg:hevc:2015:auxid:1")),
        )
    };
    let colour = associations.iter().find(|e| e.item == primary)?;
    let transforms: Vec<u16> = colour
        .properties
        .iter()
        .copied()
        .filter(|&(_, index)| is_transform(index) == Some(true))
        .map(|(raw, _)| raw)
        .collect();
    if transforms.is_empty() {
        return None;
    }
    let alphas = auxiliary_of(bytes, find(&inner, b"iref")?, primary)?;
    let alpha = associations.iter().find(|e| {
        alphas.contains(&e.item) && e.properties.iter().any(|&(_, i)| is_alpha(i) == Some(true))
    })?;
    if alpha
        .properties
        .iter()
        .any(|&(_, index)| is_transform(index) != Some(false))
    {
        return None; // already turned by its own properties (or an index we cannot read)
    }
    let added: Vec<u8> = transforms
        .iter()
        .flat_map(|&raw| {
            if wide {
                raw.to_be_bytes().to_vec()
            } else {
                vec![raw as u8]
            }
        })
        .collect();
    let grow = added.len();
    let mut out = bytes.to_vec();
    shift_item_offsets(&mut out, find(&inner, b"iloc")?, alpha.end, grow)?;
    out[alpha.count_at] = out[alpha.count_at].checked_add(transforms.len() as u8)?;
    out.splice(alpha.end..alpha.end, added);
    for b in [ipma, iprp, meta] {
        let len = u32::try_from(b.len + grow).ok()?;
        out[b.start..b.start + 4].copy_from_slice(&len.to_be_bytes());
    }
    Some(out)
}

/// One item's entry in an `ipma` box: where its association count is, where its list ends,
/// and each association as written (`raw`, essential bit included) with its property index.
struct IpmaEntry {
    item: u64,
    count_at: usize,
    end: usize,
    properties: Vec<(u16, u16)>,
}

fn ipma_index_is_wide(bytes: &[u8], ipma: BmffBox) -> Option<bool> {
    Some(*bytes.get(ipma.start + 11)? & 1 == 1)
}

fn ipma_entries(bytes: &[u8], ipma: BmffBox) -> Option<Vec<IpmaEntry>> {
    let version = *bytes.get(ipma.start + 8)?;
    let wide = ipma_index_is_wide(bytes, ipma)?;
    let end = ipma.start + ipma.len;
    let mut at = ipma.start + 12;
    let count = be(bytes.get(at..at + 4)?);
    at += 4;
    let mut entries = Vec::new();
    for _ in 0..count {
        let id_len = if version < 1 { 2 } else { 4 };
        let item = be(bytes.get(at..at + id_len)?);
        at += id_len;
        let count_at = at;
        let n = *bytes.get(at)?;
        at += 1;
        let mut properties = Vec::new();
        for _ in 0..n {
            let raw = if wide {
                at += 2;
                be(bytes.get(at - 2..at)?) as u16
            } else {
                at += 1;
                u16::from(*bytes.get(at - 1)?)
            };
            let index = if wide { raw & 0x7FFF } else { raw & 0x7F };
            properties.push((raw, index));
        }
        if at > end {
            return None;
        }
        entries.push(IpmaEntry {
            item,
            count_at,
            end: at,
            properties,
        });
    }
    Some(entries)
}

/// The items an `iref` box says are auxiliary images (`auxl`) of `primary`.
fn auxiliary_of(bytes: &[u8], iref: BmffBox, primary: u64) -> Option<Vec<u64>> {
    let id_len = if *bytes.get(iref.start + 8)? == 0 {
        2
    } else {
        4
    };
    let mut found = Vec::new();
    let mut at = iref.start + 12;
    let end = iref.start + iref.len;
    while at + 8 <= end {
        let len = be(bytes.get(at..at + 4)?) as usize;
        let kind = bytes.get(at + 4..at + 8)?;
        let from = be(bytes.get(at + 8..at + 8 + id_len)?);
        let n = be(bytes.get(at + 8 + id_len..at + 10 + id_len)?) as usize;
        let targets = at + 10 + id_len;
        let to: Option<Vec<u64>> = (0..n)
            .map(|i| {
                bytes
                    .get(targets + i * id_len..targets + (i + 1) * id_len)
                    .map(be)
            })
            .collect();
        if kind == b"auxl" && to?.contains(&primary) {
            found.push(from);
        }
        if len < 8 {
            return None;
        }
        at += len;
    }
    Some(found)
}

/// Add `grow` to every file offset in `iloc` that points at or past `from` (data after the
/// bytes being inserted), so each item still finds its data. Offsets into `idat`
/// (construction method 1) are relative to that box and stay.
fn shift_item_offsets(out: &mut [u8], iloc: BmffBox, from: usize, grow: usize) -> Option<()> {
    let version = *out.get(iloc.start + 8)?;
    let mut at = iloc.start + 12;
    let sizes = *out.get(at)?;
    let more = *out.get(at + 1)?;
    let (offset_len, length_len) = (usize::from(sizes >> 4), usize::from(sizes & 15));
    let base_len = usize::from(more >> 4);
    let index_len = if version >= 1 {
        usize::from(more & 15)
    } else {
        0
    };
    // ISO/IEC 14496-12 allows 0, 4 or 8 bytes for each.
    if [offset_len, length_len, base_len, index_len]
        .iter()
        .any(|n| ![0, 4, 8].contains(n))
    {
        return None;
    }
    at += 2;
    let id_len = if version < 2 { 2 } else { 4 };
    let items = be(out.get(at..at + id_len)?);
    at += id_len;
    for _ in 0..items {
        at += id_len;
        let method = if version >= 1 {
            at += 2;
            be(out.get(at - 2..at)?) & 15
        } else {
            0
        };
        at += 2; // data reference index
        let base_at = at;
        let base = be(out.get(at..at + base_len)?);
        at += base_len;
        let extents = be(out.get(at..at + 2)?);
        at += 2;
        let mut base_moved = false;
        for _ in 0..extents {
            at += index_len;
            let offset = be(out.get(at..at + offset_len)?);
            if method == 0 && base + offset >= from as u64 {
                if base_len > 0 && base >= from as u64 {
                    if !base_moved {
                        write_be(
                            out.get_mut(base_at..base_at + base_len)?,
                            base + grow as u64,
                        )?;
                        base_moved = true;
                    }
                } else {
                    write_be(out.get_mut(at..at + offset_len)?, offset + grow as u64)?;
                }
            }
            at += offset_len + length_len;
        }
    }
    Some(())
}

/// Write `value` big-endian into all of `field`; `None` when it does not fit.
fn write_be(field: &mut [u8], value: u64) -> Option<()> {
    let bytes = value.to_be_bytes();
    let (high, low) = bytes.split_at(8usize.checked_sub(field.len())?);
    if high.iter().any(|&b| b != 0) {
        return None;
    }
    field.copy_from_slice(low);
    Some(())
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
    fn only_an_alpha_item_without_its_colours_turn_is_given_it() {
        let fixture = |name: &str| {
            std::fs::read(format!(
                "{}/tests/fixtures/{name}",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap()
        };
        let turned = heif_alpha_turned_with_colour(&fixture("alpha-irot180.avif"))
            .expect("irot on colour only is edited");
        // One association (one byte) more, and nothing left to edit.
        assert_eq!(turned.len(), fixture("alpha-irot180.avif").len() + 1);
        assert_eq!(heif_alpha_turned_with_colour(&turned), None);
        let both = heif_alpha_turned_with_colour(&fixture("alpha-irot90-imir.avif")).unwrap();
        assert_eq!(both.len(), fixture("alpha-irot90-imir.avif").len() + 2);
        // Damaged copies are refused or edited, never a panic.
        let original = fixture("alpha-irot180.avif");
        for at in 0..original.len() {
            let _ = heif_alpha_turned_with_colour(&original[..at]);
            for value in [0x00, 0x01, 0x7F, 0xFF] {
                let mut damaged = original.clone();
                damaged[at] = value;
                let _ = heif_alpha_turned_with_colour(&damaged);
            }
        }
        // No alpha, or a sequence: left alone.
        assert_eq!(heif_alpha_turned_with_colour(&fixture("photo.avif")), None);
        assert_eq!(
            heif_alpha_turned_with_colour(&fixture("animated.avif")),
            None
        );
    }

    #[test]
    fn heif_extent_reads_the_ispe_box() {
        let mut file = b"\0\0\0\x14ispe\0\0\0\0".to_vec();
        file.extend_from_slice(&20000u32.to_be_bytes());
        file.extend_from_slice(&300u32.to_be_bytes());
        assert_eq!(heif_extent(&file), Some((20000, 300)));
    }
}
