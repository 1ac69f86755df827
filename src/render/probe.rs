//! The checks that run before any pixel is decoded: size in bytes, format from the bytes (an
//! allow-list of loaders), and the pixel count declared in the header.

use super::sniff;
use crate::model::{Limits, Probe, RenderError};
use crate::vips::Image;

/// Most bands an accepted image may declare: CMYK plus alpha is 5; RGB + alpha + a few extra
/// channels still fits. Each band costs memory at full size, and a TIFF header can declare
/// thousands, so this is checked before any decoding.
pub const MAX_BANDS: u32 = 8;

/// Said of every refused format, so the uploader knows what would work.
const ACCEPTED: &str = "send JPEG, PNG, WebP, GIF, TIFF, HEIC or AVIF";

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

impl SourceFormat {
    /// The name an uploader knows the format by.
    pub fn name(self) -> &'static str {
        match self {
            SourceFormat::Jpeg => "JPEG",
            SourceFormat::Png => "PNG",
            SourceFormat::Webp => "WebP",
            SourceFormat::Gif => "GIF",
            SourceFormat::Tiff => "TIFF",
            SourceFormat::Heif => "HEIF/AVIF",
        }
    }
}

/// A refused loader's format in plain words: `VipsForeignLoadSvgBuffer` -> "SVG"; loaders
/// that read many formats (ImageMagick) say nothing useful, so they get a generic phrase.
fn describe_loader(loader: &str) -> String {
    let name = loader.to_ascii_lowercase();
    let name = name.strip_prefix("vipsforeignload").unwrap_or(&name);
    [
        ("svg", "SVG"),
        ("pdf", "PDF"),
        ("jp2k", "JPEG 2000"),
        ("jxl", "JPEG XL"),
        ("openexr", "OpenEXR"),
        ("fits", "FITS"),
        ("matrix", "matrix"),
        ("csv", "CSV"),
        ("ppm", "PPM"),
        ("rad", "Radiance"),
        ("analyze", "Analyze"),
        ("openslide", "slide"),
    ]
    .into_iter()
    .find(|(prefix, _)| name.starts_with(prefix))
    .map_or("files of this kind".to_string(), |(_, what)| {
        format!("{what} files")
    })
}

fn check_pixels(width: u32, height: u32, max: u64) -> Result<(), RenderError> {
    if u64::from(width) * u64::from(height) > max {
        return Err(RenderError::TooManyPixels { width, height, max });
    }
    Ok(())
}

// Which limit applies depends on the format as only the probe knows it.
impl Limits {
    /// The pixel limit for one input, from what its header says about how it must be decoded.
    fn max_pixels_for(&self, format: SourceFormat, interlaced: bool) -> u64 {
        let specific = match format {
            SourceFormat::Heif => self.max_pixels_heif,
            SourceFormat::Gif => self.max_pixels_gif,
            SourceFormat::Jpeg | SourceFormat::Png if interlaced => self.max_pixels_interlaced,
            _ => self.max_pixels,
        };
        specific.min(self.max_pixels)
    }
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
    let loader = crate::vips::find_loader(bytes);
    let format = match loader.as_deref().and_then(SourceFormat::from_loader) {
        Some(format) => format,
        // No accepted loader, but the bytes start like an accepted format: damaged, not foreign
        // (libvips' TIFF loader refuses a damaged header, and another loader then claims it).
        None => match sniff::signature(bytes) {
            Some(format) => {
                return Err(RenderError::Corrupt(format!(
                    "the file starts like a {} file, but its header is damaged",
                    format.name()
                )))
            }
            None => {
                let what = loader
                    .as_deref()
                    .map_or("files of this kind".to_string(), describe_loader);
                return Err(RenderError::Unsupported(format!(
                    "{what} are not accepted; {ACCEPTED}"
                )));
            }
        },
    };
    if format == SourceFormat::Jpeg {
        if let Some(frame) = sniff::jpeg_frame(bytes) {
            if frame.is_lossless() {
                return Err(RenderError::Unsupported(format!(
                    "lossless JPEG (SOF{}) is a valid format, but the JPEG decoder here \
                     (libjpeg-turbo 2.x) cannot read it; convert it to an ordinary JPEG or PNG",
                    frame.process
                )));
            }
            check_pixels(
                frame.width,
                frame.height,
                limits.max_pixels_for(format, false),
            )?;
        }
    }
    let header = match Image::header(bytes) {
        Ok(header) => header,
        Err(e) => {
            // Headers libvips refuses for their size (libjpeg above 65500 a side, libheif
            // above 16384) are about size: say so with the size they declare.
            let declared = match format {
                SourceFormat::Heif => sniff::heif_extent(bytes),
                _ => None,
            };
            if let Some((width, height)) = declared {
                check_pixels(width, height, limits.max_pixels_for(format, false))?;
                if e.0.to_ascii_lowercase().contains("security limit") {
                    return Err(RenderError::Unsupported(format!(
                        "the image is {width}x{height}; HEIF/AVIF images over 16384 pixels \
                         a side cannot be decoded here"
                    )));
                }
            }
            return Err(super::corrupt(e));
        }
    };
    let (width, height) = (header.width(), header.height());
    // libvips sets `interlaced` for progressive JPEG and Adam7 PNG.
    let interlaced = header.get_int("interlaced").unwrap_or(0) != 0;
    check_pixels(width, height, limits.max_pixels_for(format, interlaced))?;
    let bands = header.bands();
    if bands > MAX_BANDS {
        return Err(RenderError::Unsupported(format!(
            "the image has {bands} channels; at most {MAX_BANDS} are accepted"
        )));
    }
    // EXIF orientations 5-8 turn the picture a quarter.
    let turned = header.is_turned();
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
            ..Limits::default()
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

    /// Limits that let every fixture through except by the one limit under test.
    fn only(limit: fn(&mut Limits)) -> Limits {
        let mut limits = Limits::default();
        limit(&mut limits);
        limits
    }

    fn refused_at(bytes: &[u8], limits: &Limits) -> Option<u64> {
        match probe(bytes, limits) {
            Err(RenderError::TooManyPixels { max, .. }) => Some(max),
            Ok(_) => None,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }

    #[test]
    fn each_format_gets_its_own_pixel_limit() {
        let progressive = include_bytes!("../../tests/fixtures/progressive.jpg");
        let baseline = include_bytes!("../../tests/fixtures/landscape.jpg");
        let gif = include_bytes!("../../tests/fixtures/animated.gif");
        let heic = include_bytes!("../../tests/fixtures/photo.heic");
        let interlaced = only(|l| l.max_pixels_interlaced = 100);
        assert_eq!(refused_at(progressive, &interlaced), Some(100));
        assert_eq!(refused_at(baseline, &interlaced), None);
        assert_eq!(refused_at(gif, &interlaced), None);
        let gif_only = only(|l| l.max_pixels_gif = 100);
        assert_eq!(refused_at(gif, &gif_only), Some(100));
        assert_eq!(refused_at(heic, &gif_only), None);
        let heif_only = only(|l| l.max_pixels_heif = 100);
        assert_eq!(refused_at(heic, &heif_only), Some(100));
        assert_eq!(refused_at(baseline, &heif_only), None);
    }

    #[test]
    fn the_general_pixel_limit_caps_the_per_format_ones() {
        let limits = Limits {
            max_pixels: 100,
            ..Limits::default()
        };
        let gif = include_bytes!("../../tests/fixtures/animated.gif");
        let progressive = include_bytes!("../../tests/fixtures/progressive.jpg");
        assert_eq!(refused_at(gif, &limits), Some(100));
        assert_eq!(refused_at(progressive, &limits), Some(100));
    }
}
