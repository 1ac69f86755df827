//! Colour given as CICP code points (ITU-T H.273) in a HEIF/AVIF `nclx` colour box, with no
//! ICC profile: what phones and modern encoders write (Display P3, Rec.2020, HDR PQ and HLG).
//!
//! libvips does nothing with it (8.14.1 warns "ignoring nclx profile"; 8.16.1 and 8.18.7 say
//! nothing; none attaches an ICC profile made from it or exposes the code points), and libheif
//! applies only the matrix coefficients and range (YCbCr to R'G'B') when it decodes. So we
//! read the box from the file ourselves and convert the decoded R'G'B' to sRGB: the transfer
//! function to linear light, a 3x3 matrix from the file's primaries to sRGB's (Bradford
//! adaptation when the white point is not D65), clipping to the sRGB gamut (what LittleCMS does
//! with matrix-shaper profiles), and sRGB's transfer function; the output stays 8-bit sRGB
//! with no profile, like every other input.
//!
//! HDR (PQ, HLG) is tone-mapped to SDR: display light in cd/m2 (HLG through its BT.2100 OOTF
//! for a 1000 cd/m2 display, system gamma 1.2), then the ITU-R BT.2390 EETF (its Hermite knee in
//! the PQ domain) from an assumed 1000 cd/m2 mastering peak down to 203 cd/m2, applied to the
//! largest of R, G and B with the three scaled alike (hue and saturation kept), and 203 cd/m2
//! (BT.2408's HDR reference white, HLG's 75% signal) shown as SDR white. Why: BT.2390's curve is
//! the ITU's reference operator and what mpv, libplacebo and ffmpeg use, it leaves everything
//! below about 100 cd/m2 alone and rolls highlights off smoothly instead of clipping them, and
//! mapping reference white to SDR white is what BT.2408 asks so that HDR and SDR pictures
//! side by side look alike. The peak is assumed because the `clli`/`mdcv` boxes are optional;
//! 1000 cd/m2 is HLG's nominal display and the usual HDR10 mastering peak.

/// The code points of an `nclx` colour box (ITU-T H.273).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cicp {
    pub primaries: u16,
    pub transfer: u16,
    pub matrix: u16,
}

/// The ISO BMFF boxes directly inside `data`, as (type, body); stops at the first malformed one.
fn boxes(mut data: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut found = Vec::new();
    while data.len() >= 8 {
        let size = u64::from(u32::from_be_bytes([data[0], data[1], data[2], data[3]]));
        let kind = [data[4], data[5], data[6], data[7]];
        let (header, size) = match size {
            0 => (8, data.len() as u64),
            1 => match data.get(8..16) {
                Some(large) => (16, u64::from_be_bytes(large.try_into().unwrap_or_default())),
                None => break,
            },
            size => (8, size),
        };
        if size < header || size > data.len() as u64 {
            break;
        }
        found.push((kind, &data[header as usize..size as usize]));
        data = &data[size as usize..];
    }
    found
}

fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    boxes(data)
        .into_iter()
        .find(|(k, _)| k == kind)
        .map(|(_, body)| body)
}

fn be16(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(data.get(at..at + 2)?.try_into().ok()?))
}

fn be32(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

/// The property indices (1-based, into `ipco`) that `ipma` associates with `item`.
fn properties_of(ipma: &[u8], item: u32) -> Option<Vec<usize>> {
    let (version, wide_index) = (*ipma.first()?, ipma.get(3)? & 1 == 1);
    let mut at = 8;
    let mut found = Vec::new();
    for _ in 0..be32(ipma, 4)? {
        let id = if version < 1 {
            at += 2;
            u32::from(be16(ipma, at - 2)?)
        } else {
            at += 4;
            be32(ipma, at - 4)?
        };
        let count = *ipma.get(at)?;
        at += 1;
        for _ in 0..count {
            let index = if wide_index {
                at += 2;
                usize::from(be16(ipma, at - 2)? & 0x7fff)
            } else {
                at += 1;
                usize::from(ipma.get(at - 1)? & 0x7f)
            };
            if id == item && index > 0 {
                found.push(index);
            }
        }
    }
    Some(found)
}

/// The nclx code points of a HEIF/AVIF file's primary image, or None when it has none, or has
/// an ICC profile (which wins: libvips converts through it), or its boxes cannot be read.
pub fn heif_nclx(file: &[u8]) -> Option<Cicp> {
    let meta = child(file, b"meta")?.get(4..)?; // a full box: version and flags first
    let pitm = child(meta, b"pitm")?;
    let primary = if *pitm.first()? == 0 {
        u32::from(be16(pitm, 4)?)
    } else {
        be32(pitm, 4)?
    };
    let iprp = child(meta, b"iprp")?;
    let properties = boxes(child(iprp, b"ipco")?);
    let mut nclx = None;
    for (_, ipma) in boxes(iprp).into_iter().filter(|(k, _)| k == b"ipma") {
        for index in properties_of(ipma, primary)? {
            let Some(([b'c', b'o', b'l', b'r'], colr)) = properties.get(index - 1) else {
                continue;
            };
            match colr.get(0..4)? {
                b"nclx" => {
                    nclx = Some(Cicp {
                        primaries: be16(colr, 4)?,
                        transfer: be16(colr, 6)?,
                        matrix: be16(colr, 8)?,
                    })
                }
                b"prof" | b"rICC" => return None,
                _ => {}
            }
        }
    }
    nclx
}

/// The conversion a PNG's `gAMA` (and `cHRM`) chunks ask for, the way Chromium and Firefox show
/// them, or None. The PNG spec's precedence: an `iCCP` (libvips converts through it) or `sRGB`
/// chunk overrides them. `gAMA` gives the curve (linear = sample^(1/gamma)), with `cHRM`'s
/// primaries and white or, without `cHRM`, sRGB's; `cHRM` without `gAMA` is ignored (as
/// Chromium does). A gamma within libpng's 5% threshold of 1/2.2 with no other primaries is
/// taken as sRGB: that is what the many files written with gAMA 45455 mean.
pub fn png_gamma(file: &[u8]) -> Option<ToSrgb> {
    let (mut gamma, mut chrm) = (None, None);
    let mut at = 8;
    while let (Some(length), Some(kind)) = (be32(file, at), file.get(at + 4..at + 8)) {
        let data = file.get(at + 8..at + 8 + length as usize)?;
        match kind {
            b"iCCP" | b"sRGB" => return None,
            b"gAMA" => gamma = be32(data, 0).map(|g| f64::from(g) / 100_000.0),
            b"cHRM" => {
                let v: Vec<f64> = (0..8)
                    .map_while(|i| be32(data, 4 * i).map(|v| f64::from(v) / 100_000.0))
                    .collect();
                if v.len() == 8 {
                    chrm = Some([[v[2], v[3]], [v[4], v[5]], [v[6], v[7]], [v[0], v[1]]]);
                }
            }
            b"IDAT" => break,
            _ => {}
        }
        at += 12 + length as usize;
    }
    let gamma = gamma.filter(|g| *g > 0.0)?;
    let chromaticities = chrm.filter(|c| c.iter().all(|xy| xy[1] > 0.0));
    if chromaticities.is_none() && (gamma * 2.2 - 1.0).abs() < 0.05 {
        return None;
    }
    ToSrgb::new(
        chromaticities.unwrap_or(BT709),
        Transfer::Gamma(1.0 / gamma),
    )
}

/// CIE xy of red, green, blue and white.
type Chromaticities = [[f64; 2]; 4];

const D65: [f64; 2] = [0.3127, 0.3290];
const BT709: Chromaticities = [[0.640, 0.330], [0.300, 0.600], [0.150, 0.060], D65];

/// The primaries of an H.273 ColourPrimaries code; None for unknown ones and for XYZ (10).
fn primaries(code: u16) -> Option<Chromaticities> {
    const C: [f64; 2] = [0.310, 0.316];
    Some(match code {
        1 | 2 => BT709, // 2: unspecified, taken as sRGB as before
        4 => [[0.67, 0.33], [0.21, 0.71], [0.14, 0.08], C],
        5 => [[0.64, 0.33], [0.29, 0.60], [0.15, 0.06], D65],
        6 | 7 => [[0.630, 0.340], [0.310, 0.595], [0.155, 0.070], D65],
        8 => [[0.681, 0.319], [0.243, 0.692], [0.145, 0.049], C],
        9 => [[0.708, 0.292], [0.170, 0.797], [0.131, 0.046], D65],
        11 => [
            [0.680, 0.320],
            [0.265, 0.690],
            [0.150, 0.060],
            [0.314, 0.351],
        ],
        12 => [[0.680, 0.320], [0.265, 0.690], [0.150, 0.060], D65],
        22 => [[0.630, 0.340], [0.295, 0.605], [0.155, 0.077], D65],
        _ => return None,
    })
}

type Matrix = [[f64; 3]; 3];

fn multiply(a: &Matrix, b: &Matrix) -> Matrix {
    let mut m = [[0.0; 3]; 3];
    for (i, row) in m.iter_mut().enumerate() {
        for (j, cell) in row.iter_mut().enumerate() {
            *cell = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    m
}

fn apply(m: &Matrix, v: [f64; 3]) -> [f64; 3] {
    [0, 1, 2].map(|i| m[i][0] * v[0] + m[i][1] * v[1] + m[i][2] * v[2])
}

fn invert(m: &Matrix) -> Matrix {
    let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    let c = |r1: usize, c1: usize, r2: usize, c2: usize| {
        (m[r1][c1] * m[r2][c2] - m[r1][c2] * m[r2][c1]) / det
    };
    [
        [c(1, 1, 2, 2), c(0, 2, 2, 1), c(0, 1, 1, 2)],
        [c(1, 2, 2, 0), c(0, 0, 2, 2), c(0, 2, 1, 0)],
        [c(1, 0, 2, 1), c(0, 1, 2, 0), c(0, 0, 1, 1)],
    ]
}

fn xyz([x, y]: [f64; 2]) -> [f64; 3] {
    [x / y, 1.0, (1.0 - x - y) / y]
}

/// Linear RGB to XYZ for these primaries (white maps to Y = 1).
fn rgb_to_xyz(p: &Chromaticities) -> Matrix {
    let columns = [xyz(p[0]), xyz(p[1]), xyz(p[2])];
    let m = [0, 1, 2].map(|i| [columns[0][i], columns[1][i], columns[2][i]]);
    let scale = apply(&invert(&m), xyz(p[3]));
    [0, 1, 2].map(|i| [0, 1, 2].map(|j| m[i][j] * scale[j]))
}

/// Bradford chromatic adaptation from white `from` to white `to`.
fn bradford(from: [f64; 2], to: [f64; 2]) -> Matrix {
    const B: Matrix = [
        [0.8951, 0.2664, -0.1614],
        [-0.7502, 1.7135, 0.0367],
        [0.0389, -0.0685, 1.0296],
    ];
    let (s, d) = (apply(&B, xyz(from)), apply(&B, xyz(to)));
    let gain = [
        [d[0] / s[0], 0.0, 0.0],
        [0.0, d[1] / s[1], 0.0],
        [0.0, 0.0, d[2] / s[2]],
    ];
    multiply(&invert(&B), &multiply(&gain, &B))
}

/// Linear RGB in `from`'s primaries to linear sRGB (BT.709 primaries, D65).
fn to_bt709(from: &Chromaticities) -> Matrix {
    let adapt = bradford(from[3], D65);
    multiply(
        &invert(&rgb_to_xyz(&BT709)),
        &multiply(&adapt, &rgb_to_xyz(from)),
    )
}

/// H.273 TransferCharacteristics we convert from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Transfer {
    Srgb,
    /// BT.709, BT.601, BT.2020: the inverse of their camera curve (what Chromium's skcms
    /// `kRec709` does), not BT.1886's display gamma 2.4.
    Bt709,
    Smpte240,
    Gamma(f64),
    Linear,
    Pq,
    Hlg,
}

impl Transfer {
    fn from_code(code: u16) -> Option<Self> {
        Some(match code {
            2 | 13 => Transfer::Srgb, // 2: unspecified, taken as sRGB as before
            1 | 6 | 14 | 15 => Transfer::Bt709,
            4 => Transfer::Gamma(2.2),
            5 => Transfer::Gamma(2.8),
            7 => Transfer::Smpte240,
            8 => Transfer::Linear,
            16 => Transfer::Pq,
            18 => Transfer::Hlg,
            _ => return None,
        })
    }

    /// Signal (0..1) to linear: relative to SDR white for SDR curves, cd/m2 for PQ, scene
    /// light (0..1) for HLG (its OOTF needs the whole pixel).
    fn to_linear(self, e: f64) -> f64 {
        let e = e.clamp(0.0, 1.0);
        match self {
            Transfer::Srgb => {
                if e <= 0.04045 {
                    e / 12.92
                } else {
                    ((e + 0.055) / 1.055).powf(2.4)
                }
            }
            Transfer::Bt709 => {
                if e < 0.081 {
                    e / 4.5
                } else {
                    ((e + 0.099) / 1.099).powf(1.0 / 0.45)
                }
            }
            Transfer::Smpte240 => {
                if e < 0.0913 {
                    e / 4.0
                } else {
                    ((e + 0.1115) / 1.1115).powf(1.0 / 0.45)
                }
            }
            Transfer::Gamma(g) => e.powf(g),
            Transfer::Linear => e,
            Transfer::Pq => pq_to_nits(e),
            Transfer::Hlg => {
                const A: f64 = 0.178_832_77;
                const B: f64 = 0.284_668_92;
                const C: f64 = 0.559_910_73;
                if e <= 0.5 {
                    e * e / 3.0
                } else {
                    (((e - C) / A).exp() + B) / 12.0
                }
            }
        }
    }

    fn is_hdr(self) -> bool {
        matches!(self, Transfer::Pq | Transfer::Hlg)
    }
}

// SMPTE ST 2084 (PQ) constants.
const M1: f64 = 2610.0 / 16384.0;
const M2: f64 = 2523.0 / 4096.0 * 128.0;
const C1: f64 = 3424.0 / 4096.0;
const C2: f64 = 2413.0 / 4096.0 * 32.0;
const C3: f64 = 2392.0 / 4096.0 * 32.0;

fn pq_to_nits(e: f64) -> f64 {
    let p = e.clamp(0.0, 1.0).powf(1.0 / M2);
    10000.0 * ((p - C1).max(0.0) / (C2 - C3 * p)).powf(1.0 / M1)
}

fn nits_to_pq(nits: f64) -> f64 {
    let y = (nits / 10000.0).clamp(0.0, 1.0).powf(M1);
    ((C1 + C2 * y) / (1.0 + C3 * y)).powf(M2)
}

/// The mastering peak assumed for HDR input, and the display light shown as SDR white.
const HDR_PEAK: f64 = 1000.0;
const SDR_WHITE: f64 = 203.0;

/// ITU-R BT.2390's EETF (black at 0) from `HDR_PEAK` to `SDR_WHITE`, in cd/m2.
fn eetf(nits: f64) -> f64 {
    let source = nits_to_pq(HDR_PEAK);
    let max_lum = nits_to_pq(SDR_WHITE) / source;
    let knee = 1.5 * max_lum - 0.5;
    let e1 = (nits_to_pq(nits) / source).min(1.0);
    let e2 = if e1 < knee {
        e1
    } else {
        let t = (e1 - knee) / (1.0 - knee);
        let (t2, t3) = (t * t, t * t * t);
        (2.0 * t3 - 3.0 * t2 + 1.0) * knee
            + (t3 - 2.0 * t2 + t) * (1.0 - knee)
            + (-2.0 * t3 + 3.0 * t2) * max_lum
    };
    pq_to_nits(e2 * source)
}

/// sRGB's transfer function, linear (0..1) to 8 bits, from a table of 65536 steps (the
/// darkest step is 0.05 of an 8-bit level).
fn srgb_8bit(v: f64) -> u8 {
    static TABLE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        (0..=u16::MAX)
            .map(|i| {
                let v = f64::from(i) / f64::from(u16::MAX);
                let e = if v <= 0.003_130_8 {
                    12.92 * v
                } else {
                    1.055 * v.powf(1.0 / 2.4) - 0.055
                };
                (e * 255.0).round() as u8
            })
            .collect()
    });
    table[(v.clamp(0.0, 1.0) * f64::from(u16::MAX)).round() as usize]
}

/// How one nclx-tagged image's decoded R'G'B' becomes sRGB.
#[derive(Debug, Clone, PartialEq)]
pub struct ToSrgb {
    transfer: Transfer,
    /// Linear source RGB to linear sRGB.
    matrix: Matrix,
    /// HLG's OOTF weights (the Y row of the source's RGB to XYZ).
    luminance: [f64; 3],
}

impl ToSrgb {
    /// The conversion for these code points, or None when the pixels are sRGB already (or
    /// the code points are ones we do not know, which then stay as before: taken as sRGB).
    pub fn for_cicp(cicp: Cicp) -> Option<Self> {
        let (Some(chromaticities), Some(transfer)) = (
            primaries(cicp.primaries),
            Transfer::from_code(cicp.transfer),
        ) else {
            tracing::warn!(?cicp, "nclx colour not understood; taken as sRGB");
            return None;
        };
        Self::new(chromaticities, transfer)
    }

    /// None when these are sRGB's primaries and curve.
    fn new(chromaticities: Chromaticities, transfer: Transfer) -> Option<Self> {
        if chromaticities == BT709 && transfer == Transfer::Srgb {
            return None;
        }
        Some(ToSrgb {
            transfer,
            matrix: to_bt709(&chromaticities),
            luminance: rgb_to_xyz(&chromaticities)[1],
        })
    }

    /// HDR light (cd/m2, sRGB primaries) tone-mapped to SDR, relative to SDR white.
    fn tone_map(&self, rgb: [f64; 3]) -> [f64; 3] {
        let rgb = rgb.map(|v| v.max(0.0));
        let peak = rgb[0].max(rgb[1]).max(rgb[2]);
        let scale = if peak > 0.0 { eetf(peak) / peak } else { 0.0 };
        rgb.map(|v| v * scale / SDR_WHITE)
    }

    /// HLG scene light to display light in cd/m2 (BT.2100's OOTF, 1000 cd/m2, gamma 1.2).
    fn hlg_display(&self, scene: [f64; 3], luminance: f64) -> [f64; 3] {
        let gain = HDR_PEAK * luminance.max(0.0).powf(0.2);
        scene.map(|v| v * gain)
    }

    /// Convert interleaved samples (`bands` per pixel: grey or RGB, then maybe alpha; 8-bit,
    /// or 16-bit whose full signal is `max`) to 8-bit sRGB of the same bands.
    pub fn convert(&self, samples: &[u16], bands: usize, max: u16) -> Vec<u8> {
        let levels = usize::from(max) + 1;
        let linear: Vec<f64> = (0..levels)
            .map(|v| self.transfer.to_linear(v as f64 / f64::from(max)))
            .collect();
        let at = |v: u16| linear[usize::from(v.min(max))];
        let colour = if bands >= 3 { 3 } else { 1 };
        let mut out = Vec::with_capacity(samples.len());
        for pixel in samples.chunks_exact(bands) {
            let rgb = if colour == 3 {
                [at(pixel[0]), at(pixel[1]), at(pixel[2])]
            } else {
                [at(pixel[0]); 3]
            };
            let rgb = if self.transfer == Transfer::Hlg {
                let y = if colour == 3 {
                    (0..3).map(|i| self.luminance[i] * rgb[i]).sum()
                } else {
                    rgb[0]
                };
                self.hlg_display(rgb, y)
            } else {
                rgb
            };
            let rgb = if colour == 3 {
                apply(&self.matrix, rgb)
            } else {
                rgb
            };
            let rgb = if self.transfer.is_hdr() {
                self.tone_map(rgb)
            } else {
                rgb
            };
            out.extend(rgb[..colour].iter().map(|&v| srgb_8bit(v)));
            // Alpha is linear coverage: only rescaled to 8 bits.
            out.extend(
                pixel[colour..]
                    .iter()
                    .map(|&a| (f64::from(a.min(max)) * 255.0 / f64::from(max)).round() as u8),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bt709_primaries_give_the_identity_and_p3_the_known_matrix() {
        let same = to_bt709(&BT709);
        for (i, row) in same.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                assert!((v - f64::from(u8::from(i == j))).abs() < 1e-9, "{same:?}");
            }
        }
        // Display P3 to sRGB, as published (e.g. by colour-science): first row 1.2249 -0.2247 0.
        let p3 = to_bt709(&primaries(12).unwrap());
        assert!(
            (p3[0][0] - 1.2249).abs() < 1e-3 && (p3[0][1] + 0.2247).abs() < 1e-3,
            "{p3:?}"
        );
    }

    #[test]
    fn pq_reference_white_and_hlg_75_percent_are_both_203_nits() {
        assert!((pq_to_nits(nits_to_pq(203.0)) - 203.0).abs() < 1e-6);
        assert!((nits_to_pq(203.0) - 0.5807).abs() < 1e-3);
        let scene = Transfer::Hlg.to_linear(0.75);
        let display = HDR_PEAK * scene.powf(1.2);
        assert!((display - 203.0).abs() < 1.0, "{display}");
    }

    #[test]
    fn the_eetf_keeps_shadows_and_rolls_highlights_off_to_sdr_white() {
        assert!((eetf(10.0) - 10.0).abs() < 1e-6);
        assert!((eetf(HDR_PEAK) - SDR_WHITE).abs() < 1e-6);
        assert!((eetf(10_000.0) - SDR_WHITE).abs() < 1e-6);
        let mut last = 0.0;
        for nits in (1..1000).map(f64::from) {
            let mapped = eetf(nits);
            assert!(mapped >= last && mapped <= nits + 1e-9, "{nits}: {mapped}");
            last = mapped;
        }
    }

    #[test]
    fn srgb_code_points_need_no_conversion() {
        let srgb = |primaries, transfer| {
            ToSrgb::for_cicp(Cicp {
                primaries,
                transfer,
                matrix: 6,
            })
        };
        assert_eq!(srgb(1, 13), None);
        assert_eq!(srgb(2, 2), None);
        assert!(srgb(12, 13).is_some());
        assert!(srgb(1, 16).is_some());
        assert_eq!(srgb(99, 13), None);
    }

    /// A minimal HEIF `meta` with the given property boxes all associated with item 1.
    fn heif_with(properties: &[Vec<u8>]) -> Vec<u8> {
        let boxed = |kind: &[u8], body: &[u8]| {
            let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
            b.extend_from_slice(kind);
            b.extend_from_slice(body);
            b
        };
        let ipco = boxed(b"ipco", &properties.concat());
        let mut ipma = vec![0, 0, 0, 0, 0, 0, 0, 1, 0, 1, properties.len() as u8];
        ipma.extend((1..=properties.len() as u8).map(|i| 0x80 | i));
        let iprp = boxed(b"iprp", &[ipco, boxed(b"ipma", &ipma)].concat());
        let pitm = boxed(b"pitm", &[0, 0, 0, 0, 0, 1]);
        let meta = boxed(b"meta", &[vec![0, 0, 0, 0], pitm, iprp].concat());
        [boxed(b"ftyp", b"avif\0\0\0\0"), meta].concat()
    }

    #[test]
    fn the_primary_items_nclx_box_is_read_and_an_icc_profile_wins() {
        let nclx = b"colrnclx\x00\x0c\x00\x10\x00\x09\x80";
        let colr = |body: &[u8]| {
            let mut b = ((body.len() + 4) as u32).to_be_bytes().to_vec();
            b.extend_from_slice(body);
            b
        };
        let ispe = colr(b"ispe\0\0\0\0\0\0\0\x10\0\0\0\x10");
        assert_eq!(
            heif_nclx(&heif_with(&[ispe.clone(), colr(nclx)])),
            Some(Cicp {
                primaries: 12,
                transfer: 16,
                matrix: 9
            })
        );
        let icc = colr(b"colrprof\0\0\0\0");
        assert_eq!(heif_nclx(&heif_with(&[colr(nclx), icc])), None);
        assert_eq!(heif_nclx(&heif_with(&[ispe])), None);
        assert_eq!(heif_nclx(b"\0\0\0\x08ftyp"), None);
    }

    fn png_with(chunks: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        for (kind, data) in chunks.iter().chain([&(b"IDAT", &[][..])]) {
            png.extend_from_slice(&(data.len() as u32).to_be_bytes());
            png.extend_from_slice(*kind);
            png.extend_from_slice(data);
            png.extend_from_slice(&[0; 4]); // CRC, not checked here
        }
        png
    }

    #[test]
    fn png_gamma_counts_unless_an_srgb_or_iccp_chunk_overrides_it() {
        let linear = 100_000u32.to_be_bytes();
        assert!(png_gamma(&png_with(&[(b"gAMA", &linear)])).is_some());
        assert_eq!(
            png_gamma(&png_with(&[(b"gAMA", &linear), (b"sRGB", &[0])])),
            None
        );
        assert_eq!(
            png_gamma(&png_with(&[(b"iCCP", b"p\0\0"), (b"gAMA", &linear)])),
            None
        );
        // 1/2.2 alone is what sRGB files carry; cHRM without gAMA is ignored.
        assert_eq!(
            png_gamma(&png_with(&[(b"gAMA", &45_455u32.to_be_bytes())])),
            None
        );
        assert_eq!(png_gamma(&png_with(&[(b"cHRM", &[0; 32])])), None);
    }
}
