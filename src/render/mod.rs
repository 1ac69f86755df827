//! One image in, renditions out. Nothing here knows about AWS.
//!
//! Steps, in order: `probe` (limits and format from the header, no decoding), decode once with
//! shrink-on-load to the largest size any preset needs (orientation applied, colour to sRGB),
//! then each preset, largest first, from the smallest whole picture made so far, each encoded
//! in every output format, plus a tiny placeholder for the manifest.

mod manifest;
mod preset;
mod probe;
mod webp;

pub use manifest::{Manifest, ManifestRendition, ManifestSource};
pub use preset::{
    parse_formats, parse_presets, parse_quality, Fit, Format, Preset, PresetError, Quality,
    DEFAULT_FORMATS, DEFAULT_PRESETS, DEFAULT_QUALITY,
};
pub use probe::{probe, Limits, Probe};

use crate::vips::{self, Image, Saver, UNBOUNDED};
use base64::Engine as _;

/// Why an image could not be rendered. Every variant is permanent: the same bytes will fail
/// the same way, so retrying is pointless.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("the file is empty")]
    Empty,
    #[error("the file is {bytes} bytes, over the limit of {max} bytes")]
    TooLarge { bytes: u64, max: u64 },
    #[error("the image declares {width}x{height} pixels, over the limit of {max} pixels")]
    TooManyPixels { width: u32, height: u32, max: u64 },
    #[error("unsupported format: {0}")]
    Unsupported(String),
    #[error("corrupt or truncated image: {0}")]
    Corrupt(String),
    #[error("could not encode {format}: {message}")]
    Encode { format: Format, message: String },
}

impl RenderError {
    /// A short, stable name for logs, metrics and DLQ attributes.
    pub fn kind(&self) -> &'static str {
        match self {
            RenderError::Empty => "empty",
            RenderError::TooLarge { .. } => "too_large",
            RenderError::TooManyPixels { .. } => "too_many_pixels",
            RenderError::Unsupported(_) => "unsupported",
            RenderError::Corrupt(_) => "corrupt",
            RenderError::Encode { .. } => "encode",
        }
    }
}

/// A libvips failure while decoding or processing: the bytes are not a usable image.
fn corrupt(e: vips::VipsError) -> RenderError {
    RenderError::Corrupt(e.0)
}

/// How decoding is shared between presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Decode once (shrink-on-load to the largest size needed), derive every preset from it.
    #[default]
    SharedDecode,
    /// One shrink-on-load thumbnail call per preset: the libvips maintainer's advice for
    /// quality; kept for comparison in the benchmark.
    PerPreset,
}

impl std::str::FromStr for Strategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "shared" => Ok(Strategy::SharedDecode),
            "per-preset" => Ok(Strategy::PerPreset),
            other => Err(format!(
                "unknown strategy `{other}` (use shared or per-preset)"
            )),
        }
    }
}

/// Everything the renderer needs, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderSettings {
    pub presets: Vec<Preset>,
    pub formats: Vec<Format>,
    pub quality: Quality,
    pub limits: Limits,
    pub strategy: Strategy,
}

impl Default for RenderSettings {
    fn default() -> Self {
        RenderSettings {
            presets: parse_presets(DEFAULT_PRESETS).expect("valid default"),
            formats: parse_formats(DEFAULT_FORMATS).expect("valid default"),
            quality: Quality::default(),
            limits: Limits::default(),
            strategy: Strategy::default(),
        }
    }
}

impl RenderSettings {
    /// Fail at start-up, not on the first upload, if this libvips cannot write a format
    /// (AVIF needs libheif with an AV1 encoder).
    pub fn check_encoders(&self) -> Result<(), RenderError> {
        let probe_image = include_bytes!("probe.png");
        // In memory, so it can be encoded more than once.
        let image = Image::thumbnail(probe_image, 8, 8, false, false)
            .and_then(|i| i.copy_memory())
            .map_err(corrupt)?;
        for &format in &self.formats {
            image
                .save(self.saver(format))
                .map_err(|e| RenderError::Encode {
                    format,
                    message: format!("this libvips build cannot write {format}: {e}"),
                })?;
        }
        Ok(())
    }

    fn saver(&self, format: Format) -> Saver {
        let quality = i32::from(self.quality.of(format));
        match format {
            Format::Webp => Saver::Webp { quality },
            Format::Jpeg => Saver::Jpeg { quality },
            Format::Avif => Saver::Avif { quality },
        }
    }
}

/// One encoded output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendition {
    pub preset: String,
    pub format: Format,
    pub width: u32,
    pub height: u32,
    pub bytes: Vec<u8>,
}

impl Rendition {
    /// The file name inside the original's output folder, e.g. `thumb.webp`.
    pub fn file_name(&self) -> String {
        format!("{}.{}", self.preset, self.format.extension())
    }
}

/// Everything made from one original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub source: Probe,
    pub source_bytes: u64,
    /// ThumbHash of the picture, base64: a ~25-byte placeholder a page can show at once.
    pub placeholder: String,
    pub renditions: Vec<Rendition>,
}

/// Render one image with the given settings. CPU-bound and blocking: callers on an async
/// runtime run it on a blocking thread.
pub fn render(bytes: &[u8], settings: &RenderSettings) -> Result<Rendered, RenderError> {
    let source = probe(bytes, &settings.limits)?;

    // Width (upright) of the picture at the scale a preset needs, never above the original.
    let needed_width =
        |scale: f64| ((f64::from(source.width) * scale.min(1.0)).ceil() as u32).max(1);
    let scales: Vec<f64> = settings
        .presets
        .iter()
        .map(|p| p.scale_for(source.width, source.height))
        .collect();
    // The size every preset can be derived from: the largest scale any preset needs.
    let base_width = needed_width(scales.iter().copied().fold(0.0, f64::max));
    let base = decode_base(bytes, &source, base_width as i32).map_err(corrupt)?;

    // Largest preset first, each resized from the smallest whole picture made so far that is
    // still large enough (resizing costs what its input's pixels cost): `small` comes from
    // `large`, `thumb` from `small`. Cover crops are not whole pictures and feed nothing.
    let mut order: Vec<usize> = (0..settings.presets.len()).collect();
    order.sort_by(|&a, &b| scales[b].total_cmp(&scales[a]));
    let mut whole: Vec<Image<'static>> = Vec::new();
    let mut by_preset: Vec<Vec<Rendition>> = vec![Vec::new(); settings.presets.len()];
    for index in order {
        let preset = &settings.presets[index];
        let height = preset.height.map_or(UNBOUNDED, |h| h as i32);
        let cover = preset.fit == Fit::Cover;
        let image = match settings.strategy {
            Strategy::PerPreset if !source.cmyk => {
                Image::thumbnail(bytes, preset.width as i32, height, cover, source.icc)
                    .and_then(|i| i.without_metadata())
                    .and_then(to_8bit)
            }
            _ => smallest_covering(&whole, &base, needed_width(scales[index])).resize(
                preset.width as i32,
                height,
                cover,
            ),
        }
        .map_err(corrupt)?;
        // Each preset is encoded once per format, so keep its pixels in memory.
        let image = image.copy_memory().map_err(corrupt)?;
        by_preset[index] = encode(&image, &preset.name, settings)?;
        if !cover {
            whole.push(image);
        }
    }

    // ThumbHash takes at most 100x100.
    let hash_width = needed_width(100.0 / f64::from(source.width.max(source.height)));
    Ok(Rendered {
        placeholder: placeholder(smallest_covering(&whole, &base, hash_width)).map_err(corrupt)?,
        source,
        source_bytes: bytes.len() as u64,
        renditions: by_preset.into_iter().flatten().collect(),
    })
}

/// The smallest of the whole pictures (or the base) at least `width` wide.
fn smallest_covering<'a>(
    whole: &'a [Image<'static>],
    base: &'a Image<'static>,
    width: u32,
) -> &'a Image<'static> {
    whole
        .iter()
        .filter(|i| i.width() >= width)
        .min_by_key(|i| i.width())
        .unwrap_or(base)
}

/// One preset's image in every output format: JPEG gets alpha flattened on white.
fn encode(
    image: &Image,
    preset: &str,
    settings: &RenderSettings,
) -> Result<Vec<Rendition>, RenderError> {
    let flat = if image.has_alpha() && settings.formats.iter().any(|f| !f.has_alpha()) {
        Some(image.flatten_white().map_err(corrupt)?)
    } else {
        None
    };
    settings
        .formats
        .iter()
        .map(|&format| {
            let input = match &flat {
                Some(flat) if !format.has_alpha() => flat,
                _ => image,
            };
            let mut encoded =
                input
                    .save(settings.saver(format))
                    .map_err(|e| RenderError::Encode {
                        format,
                        message: e.0,
                    })?;
            if format == Format::Webp {
                encoded = webp::strip_metadata(encoded);
            }
            Ok(Rendition {
                preset: preset.to_string(),
                format,
                width: input.width(),
                height: input.height(),
                bytes: encoded,
            })
        })
        .collect()
}

/// Decode once, shrinking on load to `width` (upright, sRGB, 8-bit), into memory: the whole
/// file is decoded now, so a truncated one fails here, and the result can feed every preset.
fn decode_base(bytes: &[u8], source: &Probe, width: i32) -> vips::Result<Image<'static>> {
    let image = if source.cmyk {
        // Shrink while decoding, then convert colour on the small image, not the full one.
        let decoded = if source.format == "jpeg" {
            Image::decode_jpeg_shrunk(bytes, source.width / width.max(1) as u32)?
        } else {
            Image::decode(bytes)?
        };
        decoded
            .icc_to_srgb()?
            .autorot()?
            .resize(width, UNBOUNDED, false)?
    } else {
        Image::thumbnail(bytes, width, UNBOUNDED, false, source.icc)?
    };
    to_8bit(image.without_metadata()?.copy_memory()?)
}

fn to_8bit(image: Image) -> vips::Result<Image> {
    if image.is_high_depth() {
        image.to_8bit()
    } else {
        Ok(image)
    }
}

/// ThumbHash (at most 100x100 input by its definition) of an image, base64-encoded.
fn placeholder(image: &Image) -> vips::Result<String> {
    let small = image.resize(100, 100, false)?.to_srgba()?;
    let (w, h) = (small.width() as usize, small.height() as usize);
    let hash = thumbhash::rgba_to_thumb_hash(w, h, &small.pixels()?);
    Ok(base64::engine::general_purpose::STANDARD.encode(hash))
}
