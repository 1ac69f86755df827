//! Presets (named sizes), output formats and their qualities, parsed from their textual
//! form (`THUMBS_PRESETS`, `THUMBS_FORMATS`, `THUMBS_QUALITY`) with errors that name the bad part.

use std::fmt;
use std::str::FromStr;

/// The geometry rule: no rendition is larger than this on either side, whatever the input's
/// shape. It is the smallest of the output formats' limits (`Format::max_side`: WebP
/// 16383), so every preset's every format is encodable; a preset without a height is bounded
/// by it, so a 1170x25000 scroll screenshot's `large=1080` comes out 708x16383.
pub const MAX_SIDE: u32 = 16_383;

pub const DEFAULT_PRESETS: &str = "thumb=150x150:cover,small=480,large=1080";
pub const DEFAULT_FORMATS: &str = "webp";
pub const DEFAULT_QUALITY: &str = "webp=80,jpeg=82,avif=50";

/// How a preset's box is filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Shrink to fit inside the box, keeping the aspect ratio.
    Inside,
    /// Fill the box exactly, cropping the overflow around the most interesting region.
    Cover,
}

/// One named output size. A missing height means "as tall as the aspect ratio makes it".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preset {
    pub name: String,
    pub width: u32,
    pub height: Option<u32>,
    pub fit: Fit,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresetError {
    #[error("preset `{0}`: expected NAME=WIDTH, NAME=WIDTHxHEIGHT or NAME=WIDTHxHEIGHT:cover")]
    Syntax(String),
    #[error("preset `{part}`: name must be 1-32 characters of a-z, 0-9, `-` or `_`")]
    Name { part: String },
    #[error("preset `{part}`: sizes must be whole numbers from 1 to {MAX_SIDE}")]
    Size { part: String },
    #[error("preset `{part}`: `:cover` needs both a width and a height")]
    CoverNeedsBox { part: String },
    #[error("preset `{part}`: unknown fit `{fit}` (use `cover` or `inside`)")]
    Fit { part: String, fit: String },
    #[error("preset name `{0}` is used twice")]
    Duplicate(String),
    #[error("no presets given")]
    Empty,
    #[error("unknown output format `{0}` (use webp, jpeg or avif)")]
    Format(String),
    #[error("format `{0}` is listed twice")]
    DuplicateFormat(String),
    #[error("quality `{0}`: expected FORMAT=1..100, e.g. webp=80")]
    Quality(String),
}

impl Preset {
    /// The box a rendition must fit (or, for cover, fill): a missing height is `MAX_SIDE`.
    pub fn bounds(&self) -> (u32, u32) {
        (self.width, self.height.unwrap_or(MAX_SIDE))
    }

    /// The scale (<= 1 means shrink) this preset needs from an upright `w` x `h` source.
    pub fn scale_for(&self, w: u32, h: u32) -> f64 {
        let sx = f64::from(self.width) / f64::from(w.max(1));
        match (self.height, self.fit) {
            (None, _) => sx.min(f64::from(MAX_SIDE) / f64::from(h.max(1))),
            (Some(th), Fit::Inside) => sx.min(f64::from(th) / f64::from(h.max(1))),
            (Some(th), Fit::Cover) => sx.max(f64::from(th) / f64::from(h.max(1))),
        }
    }
}

fn parse_side(s: &str, part: &str) -> Result<u32, PresetError> {
    match s.trim().parse::<u32>() {
        Ok(n) if (1..=MAX_SIDE).contains(&n) => Ok(n),
        _ => Err(PresetError::Size { part: part.into() }),
    }
}

impl FromStr for Preset {
    type Err = PresetError;

    fn from_str(part: &str) -> Result<Self, Self::Err> {
        let (name, spec) = part
            .split_once('=')
            .ok_or_else(|| PresetError::Syntax(part.into()))?;
        let name = name.trim();
        let name_ok = (1..=32).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(PresetError::Name { part: part.into() });
        }
        let (size, fit) = match spec.split_once(':') {
            Some((size, "cover")) => (size, Fit::Cover),
            Some((size, "inside")) => (size, Fit::Inside),
            Some((_, other)) => {
                return Err(PresetError::Fit {
                    part: part.into(),
                    fit: other.into(),
                })
            }
            None => (spec, Fit::Inside),
        };
        let (width, height) = match size.split_once('x') {
            Some((w, h)) => (parse_side(w, part)?, Some(parse_side(h, part)?)),
            None => (parse_side(size, part)?, None),
        };
        if fit == Fit::Cover && height.is_none() {
            return Err(PresetError::CoverNeedsBox { part: part.into() });
        }
        Ok(Preset {
            name: name.into(),
            width,
            height,
            fit,
        })
    }
}

/// Parse a comma-separated preset list, e.g. `thumb=150x150:cover,small=480,large=1080`.
pub fn parse_presets(list: &str) -> Result<Vec<Preset>, PresetError> {
    let mut presets: Vec<Preset> = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let preset: Preset = part.parse()?;
        if presets.iter().any(|p| p.name == preset.name) {
            return Err(PresetError::Duplicate(preset.name));
        }
        presets.push(preset);
    }
    if presets.is_empty() {
        return Err(PresetError::Empty);
    }
    Ok(presets)
}

/// An output encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Webp,
    Jpeg,
    Avif,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Webp => "webp",
            Format::Jpeg => "jpg",
            Format::Avif => "avif",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Webp => "image/webp",
            Format::Jpeg => "image/jpeg",
            Format::Avif => "image/avif",
        }
    }

    pub fn has_alpha(self) -> bool {
        !matches!(self, Format::Jpeg)
    }

    /// The largest side this format can be written and read back at, here: libwebp's 16383,
    /// libjpeg's 65500, and for AVIF libheif's 16384 (larger AVIFs encode, but libheif's
    /// security limit refuses to decode them).
    pub fn max_side(self) -> u32 {
        match self {
            Format::Webp => 16_383,
            Format::Jpeg => 65_500,
            Format::Avif => 16_384,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Webp => "webp",
            Format::Jpeg => "jpeg",
            Format::Avif => "avif",
        })
    }
}

impl FromStr for Format {
    type Err = PresetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "webp" => Ok(Format::Webp),
            "jpeg" | "jpg" => Ok(Format::Jpeg),
            "avif" => Ok(Format::Avif),
            other => Err(PresetError::Format(other.into())),
        }
    }
}

/// Parse a comma-separated format list, e.g. `webp,jpeg`.
pub fn parse_formats(list: &str) -> Result<Vec<Format>, PresetError> {
    let mut formats = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let format: Format = part.parse()?;
        if formats.contains(&format) {
            return Err(PresetError::DuplicateFormat(format.to_string()));
        }
        formats.push(format);
    }
    if formats.is_empty() {
        return Err(PresetError::Format(String::new()));
    }
    Ok(formats)
}

/// Encoder quality per format (1-100).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quality {
    pub webp: u8,
    pub jpeg: u8,
    pub avif: u8,
}

impl Default for Quality {
    fn default() -> Self {
        parse_quality(DEFAULT_QUALITY).expect("valid default")
    }
}

impl Quality {
    pub fn of(&self, format: Format) -> u8 {
        match format {
            Format::Webp => self.webp,
            Format::Jpeg => self.jpeg,
            Format::Avif => self.avif,
        }
    }
}

/// Parse `webp=80,jpeg=82`; formats not named keep their defaults.
pub fn parse_quality(list: &str) -> Result<Quality, PresetError> {
    let mut quality = Quality {
        webp: 80,
        jpeg: 82,
        avif: 50,
    };
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || PresetError::Quality(part.into());
        let (format, value) = part.split_once('=').ok_or_else(bad)?;
        let format: Format = format.parse().map_err(|_| bad())?;
        let value: u8 = value.trim().parse().map_err(|_| bad())?;
        if !(1..=100).contains(&value) {
            return Err(bad());
        }
        match format {
            Format::Webp => quality.webp = value,
            Format::Jpeg => quality.jpeg = value,
            Format::Avif => quality.avif = value,
        }
    }
    Ok(quality)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_presets_parse_to_thumb_small_large() {
        let presets = parse_presets(DEFAULT_PRESETS).unwrap();
        assert_eq!(
            presets,
            vec![
                Preset {
                    name: "thumb".into(),
                    width: 150,
                    height: Some(150),
                    fit: Fit::Cover
                },
                Preset {
                    name: "small".into(),
                    width: 480,
                    height: None,
                    fit: Fit::Inside
                },
                Preset {
                    name: "large".into(),
                    width: 1080,
                    height: None,
                    fit: Fit::Inside
                },
            ]
        );
    }

    #[test]
    fn preset_errors_name_the_bad_part() {
        let err = parse_presets("thumb=150x150:cover,big=0").unwrap_err();
        assert_eq!(
            err,
            PresetError::Size {
                part: "big=0".into()
            }
        );
        assert!(err.to_string().contains("big=0"));
        assert!(matches!(parse_presets("a=1,a=2"), Err(PresetError::Duplicate(n)) if n == "a"));
        assert!(matches!(
            parse_presets("x=100:cover"),
            Err(PresetError::CoverNeedsBox { .. })
        ));
        assert!(matches!(
            parse_presets("x=10x10:fill"),
            Err(PresetError::Fit { .. })
        ));
        assert!(matches!(
            parse_presets("../x=10"),
            Err(PresetError::Name { .. })
        ));
        assert!(matches!(
            parse_presets("x=99999"),
            Err(PresetError::Size { .. })
        ));
        assert!(matches!(parse_presets(" , "), Err(PresetError::Empty)));
        assert!(matches!(
            parse_presets("thumb"),
            Err(PresetError::Syntax(_))
        ));
    }

    #[test]
    fn cover_scale_fills_the_box_and_inside_fits_it() {
        let cover: Preset = "t=150x150:cover".parse().unwrap();
        let inside: Preset = "t=150x150".parse().unwrap();
        let wide: Preset = "w=480".parse().unwrap();
        assert_eq!(cover.scale_for(3000, 2000), 0.075);
        assert_eq!(inside.scale_for(3000, 2000), 0.05);
        assert_eq!(wide.scale_for(3000, 2000), 0.16);
        // A width-only preset on a very tall picture is held to MAX_SIDE in height.
        let large: Preset = "l=1080".parse().unwrap();
        assert_eq!(large.scale_for(1170, 25000), f64::from(MAX_SIDE) / 25000.0);
    }

    #[test]
    fn every_output_format_can_hold_the_largest_rendition() {
        for format in [Format::Webp, Format::Jpeg, Format::Avif] {
            assert!(MAX_SIDE <= format.max_side(), "{format}");
        }
    }

    #[test]
    fn formats_parse_with_aliases_and_refuse_unknown_or_repeated() {
        assert_eq!(
            parse_formats("webp, JPG").unwrap(),
            vec![Format::Webp, Format::Jpeg]
        );
        assert_eq!(parse_formats("gif"), Err(PresetError::Format("gif".into())));
        assert!(matches!(
            parse_formats("webp,webp"),
            Err(PresetError::DuplicateFormat(_))
        ));
        assert!(parse_formats("").is_err());
    }

    #[test]
    fn quality_overrides_only_named_formats() {
        let q = parse_quality("jpeg=90").unwrap();
        assert_eq!((q.webp, q.jpeg, q.avif), (80, 90, 50));
        assert!(parse_quality("jpeg=0").is_err());
        assert!(parse_quality("png=50").is_err());
        assert!(parse_quality("webp").is_err());
    }
}
