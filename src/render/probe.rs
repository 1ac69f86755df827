//! The checks that run before any pixel is decoded: size in bytes, format from the bytes (an
//! allow-list of loaders), and the pixel count declared in the header.

use super::sniff;
use crate::model::{Limits, Probe, RenderError};
use crate::vips::{Image, Loader};

/// Most bands an accepted image may declare: CMYK plus alpha is 5; RGB + alpha + a few extra
/// channels still fits. Each band costs memory at full size, and a TIFF header can declare
/// thousands, so this is checked before any decoding.
pub const MAX_BANDS: u32 = 8;

/// Said of every refused format, so the uploader knows what would work.
const ACCEPTED: &str = "send JPEG, PNG, WebP, GIF, TIFF, HEIC or AVIF";

/// The formats we decode are the `Loader`s: anything else (SVG, PDF, ImageMagick's many
/// formats, ...) is refused, since those loaders are large attack surfaces and not what users
/// upload as photos.
impl Loader {
    /// The name an uploader knows the format by.
    pub fn format_name(self) -> &'static str {
        match self {
            Loader::Jpeg => "JPEG",
            Loader::Png => "PNG",
            Loader::Webp => "WebP",
            Loader::Gif => "GIF",
            Loader::Tiff => "TIFF",
            Loader::Heif => "HEIF/AVIF",
        }
    }
}

fn check_pixels(width: u32, height: u32, max: u64) -> Result<(), RenderError> {
    if u64::from(width) * u64::from(height) > max {
        return Err(RenderError::TooManyPixels { width, height, max });
    }
    Ok(())
}

/// Each side as stored, which is what libvips decodes (`turned`: shown the other way).
fn check_sides(width: u32, height: u32, turned: bool, limits: &Limits) -> Result<(), RenderError> {
    for (way, length, max) in [
        ("wide", width, limits.max_width),
        ("tall", height, limits.max_height),
    ] {
        if u64::from(length) > max {
            let way = match (turned, way) {
                (false, way) => way,
                (true, "wide") => "tall",
                (true, _) => "wide",
            };
            return Err(RenderError::SideTooLong {
                way,
                length,
                max,
                turned,
            });
        }
    }
    Ok(())
}

// Which limit applies depends on the format as only the probe knows it.
impl Limits {
    /// The pixel limit for one input, from what its header says about how it must be decoded.
    fn max_pixels_for(&self, format: Loader, interlaced: bool) -> u64 {
        let specific = match format {
            Loader::Heif => self.max_pixels_heif,
            Loader::Gif => self.max_pixels_gif,
            Loader::Jpeg | Loader::Png if interlaced => self.max_pixels_interlaced,
            _ => self.max_pixels,
        };
        specific.min(self.max_pixels)
    }
}

/// Check `bytes` against the limits and read the header, without decoding pixels.
pub fn probe(bytes: &[u8], limits: &Limits) -> Result<Probe, RenderError> {
    probe_format(bytes, limits).map(|(probe, _)| probe)
}

/// `probe`, also saying which accepted format (and so which loader) the bytes are.
pub(super) fn probe_format(bytes: &[u8], limits: &Limits) -> Result<(Probe, Loader), RenderError> {
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
    // Our own signature check decides, before libvips sees a byte (see `vips::Loader`).
    let Some(format) = sniff::signature(bytes) else {
        return Err(RenderError::Unsupported(format!(
            "{} are not accepted; {ACCEPTED}",
            sniff::foreign_kind(bytes)
        )));
    };
    if format == Loader::Jpeg {
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
    let header = match Image::header(bytes, format) {
        Ok(header) => header,
        Err(e) => {
            // Headers libvips refuses for their size (libjpeg above 65500 a side, libheif
            // above 16384) are about size: say so with the size they declare.
            let declared = match format {
                Loader::Heif => sniff::heif_extent(bytes),
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
            return Err(super::corrupt_with(
                e,
                &format!(
                    "the file starts like a {} file, but its header is damaged",
                    format.format_name()
                ),
            ));
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
    check_sides(width, height, turned, limits)?;
    let name = match format {
        Loader::Jpeg => "jpeg",
        Loader::Png => "png",
        Loader::Webp => "webp",
        Loader::Gif => "gif",
        Loader::Tiff => "tiff",
        Loader::Heif => match header.get_string("heif-compression").as_deref() {
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
    let probe = Probe {
        format: name,
        width,
        height,
        cmyk: header.is_cmyk(),
        wide: header.is_wide(),
        icc: header.has_field("icc-profile-data"),
    };
    Ok((probe, format))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn each_side_is_checked_as_stored_and_refused_in_the_uploaders_words() {
        // orient6.jpg is stored 1200x800 and shown 800x1200 (EXIF orientation 6).
        let turned = include_bytes!("../../tests/fixtures/orient6.jpg");
        let shown = probe(turned, &Limits::default()).unwrap();
        assert_eq!((shown.width, shown.height), (800, 1200));
        assert_eq!(
            probe(turned, &only(|l| l.max_width = 1199)).unwrap_err(),
            RenderError::SideTooLong {
                way: "tall",
                length: 1200,
                max: 1199,
                turned: true
            }
        );
        assert!(probe(turned, &only(|l| l.max_height = 800)).is_ok());
        let err = probe(turned, &only(|l| l.max_height = 799)).unwrap_err();
        assert_eq!(err.kind(), "too_many_pixels");
        assert_eq!(
            err.to_string(),
            "the image is 800 pixels wide as stored (its EXIF orientation shows it turned); \
             the limit is 799"
        );
        let wide = RenderError::SideTooLong {
            way: "wide",
            length: 1_000_000,
            max: 20_000,
            turned: false,
        };
        assert_eq!(
            wide.to_string(),
            "the image is 1,000,000 pixels wide; the limit is 20,000"
        );
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
