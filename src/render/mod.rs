//! One image in, renditions out. Nothing here knows about AWS.
//!
//! Steps, in order: `probe` (limits and format from the header, no decoding), decode once with
//! shrink-on-load to the largest size any preset needs (orientation applied, colour to sRGB),
//! then each preset, largest first, from the smallest whole picture made so far, each encoded
//! in every output format, plus a tiny placeholder for the manifest.

mod colour;
mod probe;
mod reason;
mod sniff;
mod webp;

pub use probe::{probe, MAX_BANDS};

use crate::model::{
    FailedRendition, Fit, Format, Probe, RenderError, RenderSettings, Rendered, Rendition, Rules,
    Strategy,
};
use crate::vips::{self, Access, Image, Loader, Saver, UNBOUNDED};
use base64::Engine as _;

/// Free this thread's libvips state; call on a thread that rendered before it exits (tokio's
/// blocking pool starts and ends threads as load comes and goes). The shells call this, so
/// they need not know libvips.
pub fn thread_shutdown() {
    vips::thread_shutdown();
}

/// A libvips failure while decoding or processing: the bytes are not a usable image, unless
/// libvips ran short of memory or temporary space.
fn corrupt(e: vips::VipsError) -> RenderError {
    corrupt_with(e, "the picture data could not be decoded")
}

/// `corrupt`, saying `fallback` when libvips' text has nothing for the uploader.
fn corrupt_with(e: vips::VipsError, fallback: &str) -> RenderError {
    if reason::is_resource_failure(&e.0) {
        RenderError::Resources(reason::for_uploader(&e.0, "out of memory"))
    } else {
        RenderError::Corrupt(reason::for_uploader(&e.0, fallback))
    }
}

/// A failure while decoding bytes that `loader` was chosen for. libnsgif says "Out of memory"
/// when libvips refuses the canvas a GIF's first frame asks for (its offset plus its size past
/// 65536 a side, while the size the header gives passed our limits): the file is damaged and a
/// retry changes nothing, so that is `corrupt`, not a shortage.
fn decode_error(e: vips::VipsError, loader: Loader) -> RenderError {
    if loader == Loader::Gif && reason::is_gif_decoder_oom(&e.0) {
        let detail = reason::for_uploader(&e.0.replace("Out of memory", ""), "");
        return RenderError::Corrupt(format!(
            "the GIF is damaged: its frames describe a picture no GIF can have{}",
            if detail.is_empty() {
                String::new()
            } else {
                format!(" ({detail})")
            }
        ));
    }
    corrupt(e)
}

/// A libvips failure while writing `format`.
fn encode_error(format: Format, e: &vips::VipsError) -> RenderError {
    if reason::is_resource_failure(&e.0) {
        return RenderError::Resources(reason::for_uploader(&e.0, "out of memory"));
    }
    RenderError::Encode {
        format,
        message: reason::for_uploader(&e.0, "the encoder gave no reason"),
    }
}

// The settings are shared (`model`); what libvips does with them is here, beside libvips.
impl RenderSettings {
    /// Fail at start-up, not on the first upload, if this libvips cannot write a format
    /// (AVIF needs libheif with an AV1 encoder).
    pub fn check_encoders(&self) -> Result<(), RenderError> {
        let probe_image = include_bytes!("probe.png");
        // In memory, so it can be encoded more than once.
        let image = Image::thumbnail(probe_image, Loader::Png, 8, 8, false, false)
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

impl Rules {
    /// [`RenderSettings::check_encoders`] for every format some rule (or the `default` one)
    /// writes, each probed once: whether libvips can write a format does not depend on the
    /// rule, and the probe runs on every cold start.
    pub fn check_encoders(&self, default: &RenderSettings) -> Result<(), RenderError> {
        let mut formats: Vec<Format> = Vec::new();
        for format in self
            .all(default)
            .flat_map(|rule| rule.settings.formats.iter())
        {
            if !formats.contains(format) {
                formats.push(*format);
            }
        }
        RenderSettings {
            formats,
            ..default.clone()
        }
        .check_encoders()
    }
}

/// Render one image with the given settings. CPU-bound and blocking: callers on an async
/// runtime run it on a blocking thread. A panic inside (a bug of ours or of a library we
/// call) becomes `RenderError::Internal` for this image alone. Renders may run in parallel;
/// a failure's reason is still this image's own (see `vips::with_own_messages`).
pub fn render(bytes: &[u8], settings: &RenderSettings) -> Result<Rendered, RenderError> {
    vips::with_own_messages(|| render_caught(bytes, settings), quotes_libvips)
}

/// Whether a result's reasons come from libvips' text (and so could be another image's).
fn quotes_libvips(result: &Result<Rendered, RenderError>) -> bool {
    match result {
        Ok(rendered) => !rendered.failed.is_empty(),
        Err(error) => matches!(
            error,
            RenderError::Corrupt(_) | RenderError::Resources(_) | RenderError::Encode { .. }
        ),
    }
}

fn render_caught(bytes: &[u8], settings: &RenderSettings) -> Result<Rendered, RenderError> {
    std::panic::catch_unwind(|| render_unguarded(bytes, settings)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("a panic");
        // The panic's own text (an assertion's `left == right`) is for us, not the uploader.
        tracing::error!(panic = what, "render panicked");
        Err(RenderError::Internal(INTERNAL.into()))
    })
}

/// Said for a bug of ours, whatever it was.
const INTERNAL: &str = "a step of making the thumbnails failed unexpectedly; the fault is ours, \
                        not the file's";

fn render_unguarded(bytes: &[u8], settings: &RenderSettings) -> Result<Rendered, RenderError> {
    let (source, loader) = probe::probe_format(bytes, &settings.limits)?;
    let source_bytes = bytes.len() as u64;
    // A HEIF/AVIF whose alpha lacks its picture's turn or mirror is read as if it had it.
    let edited = match loader {
        Loader::Heif => sniff::heif_alpha_turned_with_colour(bytes),
        _ => None,
    };
    let bytes = edited.as_deref().unwrap_or(bytes);

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
    // HEIC/AVIF colour given only by nclx code points, and PNG gAMA/cHRM chunks: libvips
    // takes both as sRGB.
    let nclx = match loader {
        Loader::Heif if !source.icc => colour::heif_nclx(bytes).and_then(colour::ToSrgb::for_cicp),
        Loader::Png if !source.icc => colour::png_gamma(bytes),
        _ => None,
    };
    let nclx = nclx.as_ref();
    let base = decode_base(bytes, loader, &source, base_width as i32, nclx)
        .map_err(|e| decode_error(e, loader))?;

    // Largest preset first, each resized from the smallest whole picture made so far that is
    // still large enough (resizing costs what its input's pixels cost): `small` comes from
    // `large`, `thumb` from `small`. Cover crops are not whole pictures and feed nothing.
    let mut order: Vec<usize> = (0..settings.presets.len()).collect();
    order.sort_by(|&a, &b| scales[b].total_cmp(&scales[a]));
    let mut whole: Vec<Image<'static>> = Vec::new();
    let mut by_preset: Vec<Vec<Rendition>> = vec![Vec::new(); settings.presets.len()];
    let mut failed = Vec::new();
    for index in order {
        let preset = &settings.presets[index];
        // Every rendition fits MAX_SIDE on both sides (see `Preset::bounds`).
        let (width, height) = preset.bounds();
        let cover = preset.fit == Fit::Cover;
        let image = match settings.strategy {
            Strategy::PerPreset if !source.cmyk && !source.wide => Image::thumbnail(
                bytes,
                loader,
                width as i32,
                height as i32,
                cover,
                source.icc,
            )
            .and_then(|i| in_srgb(i, nclx))
            .and_then(|i| i.without_metadata())
            .and_then(fit_bands),
            _ => smallest_covering(&whole, &base, needed_width(scales[index])).resize(
                width as i32,
                height as i32,
                cover,
            ),
        }
        // Invisible colour is not worth bytes (a rendition that was not resized still has it).
        .and_then(|image| image.clear_hidden_colour())
        // Each preset is encoded once per format, so keep its pixels in memory.
        .and_then(|image| image.copy_memory());
        let image = match image {
            Ok(image) => image,
            Err(e) => {
                let error = decode_error(e, loader);
                failed.extend(settings.formats.iter().map(|&format| FailedRendition {
                    preset: preset.name.clone(),
                    format,
                    error: error.clone(),
                }));
                continue;
            }
        };
        by_preset[index] = encode(&image, &preset.name, settings, &mut failed);
        if !cover {
            whole.push(image);
        }
    }
    let renditions: Vec<Rendition> = by_preset.into_iter().flatten().collect();
    if renditions.is_empty() {
        // Nothing to store: the first reason is the image's reason.
        return Err(failed.swap_remove(0).error);
    }

    // ThumbHash takes at most 100x100.
    let hash_width = needed_width(100.0 / f64::from(source.width.max(source.height)));
    Ok(Rendered {
        placeholder: placeholder(smallest_covering(&whole, &base, hash_width))?,
        source,
        source_bytes,
        renditions,
        failed,
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

/// One preset's image in every output format (JPEG gets alpha flattened on white); a format
/// that fails is added to `failed` and the others are still made.
fn encode(
    image: &Image,
    preset: &str,
    settings: &RenderSettings,
    failed: &mut Vec<FailedRendition>,
) -> Vec<Rendition> {
    let flat = if image.has_alpha() && settings.formats.iter().any(|f| !f.has_alpha()) {
        Some(image.flatten_white())
    } else {
        None
    };
    let mut renditions = Vec::new();
    for &format in &settings.formats {
        let input = match &flat {
            Some(flat) if !format.has_alpha() => flat.as_ref().map_err(|e| corrupt(e.clone())),
            _ => Ok(image),
        };
        let encoded = input.and_then(|input| {
            let bytes = input
                .save(settings.saver(format))
                .map_err(|e| encode_error(format, &e))?;
            Ok((input.width(), input.height(), bytes))
        });
        match encoded {
            Ok((width, height, bytes)) => renditions.push(Rendition {
                preset: preset.to_string(),
                format,
                width,
                height,
                bytes: if format == Format::Webp {
                    webp::strip_metadata(bytes)
                } else {
                    bytes
                },
            }),
            Err(error) => failed.push(FailedRendition {
                preset: preset.to_string(),
                format,
                error,
            }),
        }
    }
    renditions
}

/// Decode once, shrinking on load to `width` (upright, sRGB, 8-bit), into memory: the whole
/// file is decoded now, so a truncated one fails here, and the result can feed every preset.
fn decode_base(
    bytes: &[u8],
    loader: Loader,
    source: &Probe,
    width: i32,
    nclx: Option<&colour::ToSrgb>,
) -> vips::Result<Image<'static>> {
    let image = if source.cmyk || source.wide {
        // Shrink the CMYK pixels first (JPEG while decoding, others as they stream in), then
        // convert colour on the small image: a full-size conversion of a large CMYK TIFF took
        // minutes. libvips' thumbnail would do this too, but its 8.14 refuses some valid
        // embedded profiles and has no black-point compensation. 32-bit pixels take the same
        // way to 8 bits: libvips 8.18's thumbnail casts them itself (a full-range uint32 ramp
        // came out clipped and wrapped).
        let decoded = if loader == Loader::Jpeg {
            let shrink = source.width / width.max(1) as u32;
            Image::load(bytes, loader, Access::Random, shrink)?
        } else {
            Image::load(bytes, loader, Access::Sequential, 1)?
        };
        // The decoded image is stored unrotated: its upright width is its height when the
        // orientation turns it a quarter.
        let upright_width = if decoded.is_turned() {
            decoded.height()
        } else {
            decoded.width()
        };
        // One pixel of margin, so rounding never leaves it narrower than needed.
        let scale = (f64::from(width + 1) / f64::from(upright_width.max(1))).min(1.0);
        let shrunk = if scale < 1.0 {
            decoded.scale(scale)?
        } else {
            decoded
        };
        let converted = if source.cmyk {
            shrunk.icc_to_srgb()?
        } else {
            shrunk.wide_to_8bit()?
        };
        // In memory before turning it: a sequential read cannot be turned.
        converted.copy_memory()?.autorot()?
    } else {
        in_srgb(
            Image::thumbnail(bytes, loader, width, UNBOUNDED, false, source.icc)?,
            nclx,
        )?
    };
    fit_bands(image.without_metadata()?)?.copy_memory()
}

/// The pixels of an nclx-tagged HEIC/AVIF or a PNG with gAMA/cHRM converted to sRGB (see
/// `colour`); others unchanged.
fn in_srgb<'a>(image: Image<'a>, nclx: Option<&colour::ToSrgb>) -> vips::Result<Image<'a>> {
    let Some(nclx) = nclx else {
        return Ok(image);
    };
    let samples = image.samples()?;
    let pixels = nclx.convert(&samples.values, image.bands() as usize, samples.max);
    Image::from_pixels(image.width(), image.height(), image.bands(), &pixels)
}

/// 8 bits per band, and only the bands an output can hold: grey or colour, plus alpha. Extra
/// channels (a TIFF may carry any number; libvips itself writes RGB + alpha + more) are
/// dropped: the band after the colour ones is alpha, as TIFF's ExtraSamples has it.
fn fit_bands(image: Image) -> vips::Result<Image> {
    let image = if image.is_wide() {
        image.wide_to_8bit()?
    } else if image.is_high_depth() {
        image.to_8bit()?
    } else {
        image
    };
    let colour = if image.is_grey() { 1 } else { 3 };
    let keep = (colour + 1).min(image.bands());
    if image.bands() > keep {
        image.first_bands(keep)
    } else {
        Ok(image)
    }
}

/// ThumbHash (at most 100x100 input by its definition) of an image, base64-encoded.
fn placeholder(image: &Image) -> Result<String, RenderError> {
    let small = image
        .resize(100, 100, false)
        .and_then(|i| i.to_srgba())
        .map_err(corrupt)?;
    let (w, h) = (small.width() as usize, small.height() as usize);
    let pixels = small.pixels().map_err(corrupt)?;
    // thumbhash asserts this; an image that is not 8-bit RGBA here is a bug of ours.
    if pixels.len() != w * h * 4 {
        return Err(RenderError::Internal(INTERNAL.into()));
    }
    let hash = thumbhash::rgba_to_thumb_hash(w, h, &pixels);
    Ok(base64::engine::general_purpose::STANDARD.encode(hash))
}
