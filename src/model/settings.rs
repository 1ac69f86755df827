//! What the renderer is asked to make, and the limits an original must stay within: read
//! from the environment by `config`, used by `render`, fingerprinted by `store`.

use super::{
    parse_formats, parse_presets, Format, Preset, Quality, DEFAULT_FORMATS, DEFAULT_PRESETS,
};

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

/// Limits that hold before decoding. Pixel limits differ by format because decoders differ in
/// what they hold at once: baseline JPEG, plain PNG, WebP and TIFF stream rows (64 MP peaks at
/// 66-115 MB), while progressive JPEG and interlaced PNG (every pass must be kept), GIF (a
/// whole RGBA frame) and HEIC/AVIF (whole planes, then RGB) hold the picture several times
/// over (64 MP peaks at 372-675 MB). Each limit below keeps the worst accepted image of its
/// kind under a 512 MB peak (`make bench-memory`, docs/benchmarks/memory.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: u64,
    /// Every format; the ones below can only be lower.
    pub max_pixels: u64,
    /// Progressive JPEG and interlaced (Adam7) PNG.
    pub max_pixels_interlaced: u64,
    /// HEIC and AVIF.
    pub max_pixels_heif: u64,
    pub max_pixels_gif: u64,
    /// Widest and tallest image of every format, as stored (before EXIF orientation turns
    /// it). libvips' buffers hold rows at the stored width, so a very wide image (1,000,000 x
    /// 64 peaked at 1 GB on 8.16) costs far more than a square one of the same pixel count; a
    /// tall one costs much less, so its limit is higher (long screenshots).
    pub max_width: u64,
    pub max_height: u64,
}

impl Default for Limits {
    /// Room for a 48 MP phone photo (8064 x 6048 = 48.8 MP) with margin, as JPEG or as HEIC
    /// ("HEIF Max"); PNGs of that size can reach tens of MB.
    fn default() -> Self {
        Limits {
            max_bytes: 64 * 1024 * 1024,
            max_pixels: 64_000_000,
            max_pixels_interlaced: 40_000_000,
            max_pixels_heif: 50_000_000,
            max_pixels_gif: 16_000_000,
            max_width: 16_384,
            max_height: 65_535,
        }
    }
}
