//! The checks that run before any pixel is decoded: size in bytes, format from the bytes (an
//! allow-list of loaders), and the pixel count declared in the header.

use super::RenderError;
use crate::vips::Image;

/// Input formats we decode. Anything else (SVG, PDF, ImageMagick's many formats, ...) is
/// refused: those loaders are large attack surfaces and not what users upload as photos.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Jpeg,
    Png,
    Webp,
    Gif,
    Tiff,
    /// HEIC or AVIF (both through libheif); refined from the header.
    Heif,
}

impl SourceFormat {
    /// Map a libvips loader class name (e.g. `VipsForeignLoadJpegBuffer`) to an allowed format.
    fn from_loader(loader: &str) -> Option<Self> {
        let name = loader.to_ascii_lowercase();
        let name = name.strip_prefix("vipsforeignload")?;
        // Order matters only in that no allowed name contains another.
        [
            ("jpeg", SourceFormat::Jpeg),
            ("png", SourceFormat::Png),
            ("webp", SourceFormat::Webp),
            ("gif", SourceFormat::Gif),
            ("tiff", SourceFormat::Tiff),
            ("heif", SourceFormat::Heif),
        ]
        .into_iter()
        .find(|(prefix, _)| name.starts_with(prefix) || name.starts_with(&format!("ns{prefix}")))
        .map(|(_, f)| f)
    }
}

/// Limits that hold before decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: u64,
    pub max_pixels: u64,
}

impl Default for Limits {
    /// Room for a 48 MP phone photo (8064 x 6048 = 48.8 MP) with margin; PNGs of that size
    /// can reach tens of MB.
    fn default() -> Self {
        Limits {
            max_bytes: 64 * 1024 * 1024,
            max_pixels: 64_000_000,
        }
    }
}

/// What the header tells us, with width and height as displayed (after EXIF orientation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub format: &'static str,
    pub width: u32,
    pub height: u32,
    /// CMYK pixels need their own colour conversion path (see `vips::Image::icc_to_srgb`).
    pub cmyk: bool,
    /// An embedded ICC profile: colour must go through it to sRGB.
    pub icc: bool,
}

/// Check `bytes` against the limits and read the header, without decoding pixels.
pub fn probe(bytes: &[u8], limits: &Limits) -> Result<Probe, RenderError> {
    if bytes.is_empty() {
        return Err(RenderError::Empty);
    }
    let size = bytes.len() as u64;
    if size > limits.max_bytes {
        return Err(RenderError::TooLarge {
            bytes: size,
            max: limits.max_bytes,
        });
    }
    let loader = crate::vips::find_loader(bytes)
        .ok_or_else(|| RenderError::Unsupported("not a recognised image format".into()))?;
    let format = SourceFormat::from_loader(&loader)
        .ok_or_else(|| RenderError::Unsupported(format!("{loader} input is not accepted")))?;
    let header = Image::header(bytes).map_err(super::corrupt)?;
    let (width, height) = (header.width(), header.height());
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(RenderError::TooManyPixels {
            width,
            height,
            max: limits.max_pixels,
        });
    }
    // EXIF orientations 5-8 turn the picture a quarter.
    let turned = matches!(header.get_int("orientation"), Some(5..=8));
    let format = match format {
        SourceFormat::Jpeg => "jpeg",
        SourceFormat::Png => "png",
        SourceFormat::Webp => "webp",
        SourceFormat::Gif => "gif",
        SourceFormat::Tiff => "tiff",
        SourceFormat::Heif => match header.get_string("heif-compression").as_deref() {
            Some("av1") => "avif",
            Some("hevc") => "heic",
            _ => "heif",
        },
    };
    let (width, height) = if turned {
        (height, width)
    } else {
        (width, height)
    };
    Ok(Probe {
        format,
        width,
        height,
        cmyk: header.is_cmyk(),
        icc: header.has_field("icc-profile-data"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loaders_map_to_allowed_formats_only() {
        assert_eq!(
            SourceFormat::from_loader("VipsForeignLoadJpegBuffer"),
            Some(SourceFormat::Jpeg)
        );
        assert_eq!(
            SourceFormat::from_loader("VipsForeignLoadNsgifBuffer"),
            Some(SourceFormat::Gif)
        );
        assert_eq!(
            SourceFormat::from_loader("VipsForeignLoadHeifBuffer"),
            Some(SourceFormat::Heif)
        );
        assert_eq!(
            SourceFormat::from_loader("VipsForeignLoadPngBuffer"),
            Some(SourceFormat::Png)
        );
        assert_eq!(SourceFormat::from_loader("VipsForeignLoadSvgBuffer"), None);
        assert_eq!(SourceFormat::from_loader("VipsForeignLoadPdfBuffer"), None);
        assert_eq!(
            SourceFormat::from_loader("VipsForeignLoadMagickBuffer"),
            None
        );
    }

    #[test]
    fn empty_input_is_refused_before_libvips_sees_it() {
        assert!(matches!(
            probe(b"", &Limits::default()),
            Err(RenderError::Empty)
        ));
    }

    #[test]
    fn byte_limit_is_checked_first() {
        let limits = Limits {
            max_bytes: 4,
            max_pixels: 1,
        };
        assert!(matches!(
            probe(b"12345", &limits),
            Err(RenderError::TooLarge { bytes: 5, max: 4 })
        ));
    }

    #[test]
    fn text_is_unsupported() {
        let err = probe(b"just some text, not a picture", &Limits::default()).unwrap_err();
        assert!(matches!(err, RenderError::Unsupported(_)), "{err:?}");
    }
}
