//! What the renderer made from one original, or why it could not.

use super::Format;

/// Why an image (or one of its renditions) could not be rendered. All but `Resources` are
/// permanent: the same bytes fail the same way, so retrying is pointless. Messages are
/// written for the person who uploaded the file, never in libvips' words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("the file is empty")]
    Empty,
    #[error("the file is {bytes} bytes, over the limit of {max} bytes")]
    TooLarge { bytes: u64, max: u64 },
    #[error("the image declares {width}x{height} pixels, over the limit of {max} pixels")]
    TooManyPixels { width: u32, height: u32, max: u64 },
    /// A side over `Limits::max_width` or `max_height` (`length` of the side `way`, "wide" or
    /// "tall", as stored; `turned` when EXIF orientation shows it the other way). Its kind is
    /// `too_many_pixels`: over the size limits.
    #[error("{}", side_too_long(.way, *.length, *.max, *.turned))]
    SideTooLong {
        way: &'static str,
        length: u32,
        max: u64,
        turned: bool,
    },
    #[error("unsupported format: {0}")]
    Unsupported(String),
    #[error("corrupt or truncated image: {0}")]
    Corrupt(String),
    #[error("could not encode {format}: {message}")]
    Encode { format: Format, message: String },
    /// The machine ran short (memory, temporary disk, file handles) or lacks a codec it should
    /// have: not the file's fault.
    #[error("the server could not render it just now (a shortage or a missing codec on our side, not a fault of the file): {0}")]
    Resources(String),
    /// A bug of ours (a panic while rendering), caught so one file cannot stop the others.
    #[error("internal error while rendering: {0}")]
    Internal(String),
    /// Some renditions were made and stored, these were not.
    #[error("{failed} of {total} renditions could not be made: {reasons}")]
    Incomplete {
        failed: usize,
        total: usize,
        reasons: String,
        /// Every rendition failed for a shortage another try may not meet.
        retryable: bool,
    },
}

/// "the image is 1,000,000 pixels wide; the limit is 16,384".
fn side_too_long(way: &str, length: u32, max: u64, turned: bool) -> String {
    let stored = if turned {
        " as stored (its EXIF orientation shows it turned)"
    } else {
        ""
    };
    format!(
        "the image is {} pixels {way}{stored}; the limit is {}",
        grouped(length.into()),
        grouped(max)
    )
}

/// A number with thousands separators, as people write them.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl RenderError {
    /// A short, stable name for logs, metrics and DLQ attributes.
    pub fn kind(&self) -> &'static str {
        match self {
            RenderError::Empty => "empty",
            RenderError::TooLarge { .. } => "too_large",
            RenderError::TooManyPixels { .. } | RenderError::SideTooLong { .. } => {
                "too_many_pixels"
            }
            RenderError::Unsupported(_) => "unsupported",
            RenderError::Corrupt(_) => "corrupt",
            RenderError::Encode { .. } => "encode",
            RenderError::Resources(_) => "out_of_resources",
            RenderError::Internal(_) => "internal",
            RenderError::Incomplete { .. } => "incomplete",
        }
    }

    /// Only a shortage of the machine's resources may go away on another try (also when it
    /// is what every missing rendition failed for).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            RenderError::Resources(_)
                | RenderError::Incomplete {
                    retryable: true,
                    ..
                }
        )
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
    /// 32-bit integer or float samples: brought to 8 bits by us (see `vips::Image::wide_to_8bit`).
    pub wide: bool,
    /// An embedded ICC profile: colour must go through it to sRGB.
    pub icc: bool,
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

/// A rendition that could not be made, while others of the same original were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedRendition {
    pub preset: String,
    pub format: Format,
    pub error: RenderError,
}

/// Everything made from one original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub source: Probe,
    pub source_bytes: u64,
    /// ThumbHash of the picture, base64: a ~25-byte placeholder a page can show at once.
    pub placeholder: String,
    pub renditions: Vec<Rendition>,
    /// One preset's (or format's) failure does not cost the others: the renditions that
    /// could be made are kept, and these are listed in the manifest and reported.
    pub failed: Vec<FailedRendition>,
}

impl Rendered {
    /// The error to report once the renditions that were made are stored, if any failed.
    pub fn incomplete(&self) -> Option<RenderError> {
        if self.failed.is_empty() {
            return None;
        }
        let reasons: Vec<String> = self
            .failed
            .iter()
            .map(|f| format!("{} {}: {}", f.preset, f.format, f.error))
            .collect();
        Some(RenderError::Incomplete {
            failed: self.failed.len(),
            total: self.failed.len() + self.renditions.len(),
            reasons: reasons.join("; "),
            retryable: self.failed.iter().all(|f| f.error.is_retryable()),
        })
    }
}
