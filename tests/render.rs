//! Golden tests of the render stage on the real images in tests/fixtures (see SOURCES.md for
//! where each comes from and what it should look like).

use thumbs::render::{
    parse_formats, render, Format, Limits, RenderError, RenderSettings, Rendered, Strategy,
};
use thumbs::vips::Image;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn render_default(name: &str) -> Rendered {
    render(&fixture(name), &RenderSettings::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn sizes(rendered: &Rendered) -> Vec<(String, u32, u32)> {
    rendered
        .renditions
        .iter()
        .map(|r| (r.preset.clone(), r.width, r.height))
        .collect()
}

/// Mean of each of the first three bands of an encoded image, decoded to 8-bit sRGBA.
fn mean_rgb(encoded: &[u8]) -> [f64; 3] {
    let image = Image::decode(encoded).unwrap().to_srgba().unwrap();
    let pixels = image.pixels().unwrap();
    let mut sum = [0f64; 3];
    for px in pixels.chunks_exact(4) {
        for band in 0..3 {
            sum[band] += f64::from(px[band]);
        }
    }
    let n = (pixels.len() / 4) as f64;
    sum.map(|s| s / n)
}

fn expect_error(name: &str, settings: &RenderSettings) -> RenderError {
    match render(&fixture(name), settings) {
        Ok(_) => panic!("{name} rendered but should have been refused"),
        Err(e) => e,
    }
}

#[test]
fn landscape_photo_gives_the_three_default_sizes() {
    let rendered = render_default("landscape.jpg");
    assert_eq!(
        sizes(&rendered),
        vec![
            ("thumb".into(), 150, 150),
            ("small".into(), 480, 320),
            ("large".into(), 1080, 720)
        ]
    );
    assert_eq!((rendered.source.width, rendered.source.height), (1200, 800));
    assert_eq!(rendered.source.format, "jpeg");
    for r in &rendered.renditions {
        assert_eq!(r.format, Format::Webp);
        assert_eq!(&r.bytes[8..12], b"WEBP", "{} is WebP", r.preset);
    }
}

#[test]
fn small_images_are_never_upscaled() {
    // grey16.png is 300x200: small (480) and large (1080) stay at 300x200.
    let rendered = render_default("grey16.png");
    assert_eq!(
        sizes(&rendered),
        vec![
            ("thumb".into(), 150, 150),
            ("small".into(), 300, 200),
            ("large".into(), 300, 200)
        ]
    );
}

#[test]
fn exif_orientation_6_and_8_come_out_upright_portrait() {
    for name in ["orient6.jpg", "orient8.jpg"] {
        let rendered = render_default(name);
        assert_eq!(
            (rendered.source.width, rendered.source.height),
            (800, 1200),
            "{name}"
        );
        let large = &rendered.renditions[2];
        assert_eq!((large.width, large.height), (800, 1200), "{name}");
        let small = &rendered.renditions[1];
        assert_eq!((small.width, small.height), (480, 720), "{name}");
    }
    // Both orientations describe the same upright picture: their renditions must match.
    let six = mean_rgb(&render_default("orient6.jpg").renditions[1].bytes);
    let eight = mean_rgb(&render_default("orient8.jpg").renditions[1].bytes);
    let upright = mean_rgb(&render_default("portrait.heic").renditions[1].bytes);
    for band in 0..3 {
        assert!(
            (six[band] - eight[band]).abs() < 3.0,
            "{six:?} vs {eight:?}"
        );
        assert!(
            (six[band] - upright[band]).abs() < 6.0,
            "{six:?} vs {upright:?}"
        );
    }
}

#[test]
fn cmyk_jpeg_is_converted_through_its_embedded_profile() {
    // SOURCES.md: the sRGB original averages R 158.3, G 178.2, B 207.8; ignoring the embedded
    // profile gives about 152.7, 166.3, 194.9.
    let rendered = render_default("cmyk.jpg");
    let mean = mean_rgb(&rendered.renditions[2].bytes);
    for (band, expected) in [158.3, 178.2, 207.8].into_iter().enumerate() {
        assert!(
            (mean[band] - expected).abs() < 6.0,
            "band {band}: {mean:?} vs the original's 158.3, 178.2, 207.8"
        );
    }
}

#[test]
fn outputs_carry_no_metadata() {
    let rendered = render_default("landscape.jpg"); // has EXIF with GPS and an ICC profile
    for r in &rendered.renditions {
        let image = Image::decode(&r.bytes).unwrap();
        for field in ["exif-data", "xmp-data", "icc-profile-data", "iptc-data"] {
            assert!(!image.has_field(field), "{} has {field}", r.preset);
        }
        for chunk in [&b"EXIF"[..], b"ICCP", b"XMP "] {
            assert!(
                !r.bytes.windows(4).any(|w| w == chunk),
                "{} has a {chunk:?} chunk",
                r.preset
            );
        }
    }
}

#[test]
fn alpha_is_kept_for_webp_and_flattened_on_white_for_jpeg() {
    let settings = RenderSettings {
        formats: parse_formats("webp,jpeg").unwrap(),
        ..RenderSettings::default()
    };
    let rendered = render(&fixture("alpha.png"), &settings).unwrap();
    let webp = rendered
        .renditions
        .iter()
        .find(|r| r.preset == "large" && r.format == Format::Webp)
        .unwrap();
    let jpeg = rendered
        .renditions
        .iter()
        .find(|r| r.preset == "large" && r.format == Format::Jpeg)
        .unwrap();
    assert!(Image::decode(&webp.bytes).unwrap().has_alpha());
    let flat = Image::decode(&jpeg.bytes).unwrap();
    assert!(!flat.has_alpha());
    assert_eq!(flat.bands(), 3);
    // The transparent corners become white, not black.
    let pixels = flat.to_srgba().unwrap().pixels().unwrap();
    assert!(
        pixels[..3].iter().all(|&v| v > 240),
        "corner {:?}",
        &pixels[..3]
    );
    assert_eq!(&jpeg.bytes[..2], &[0xFF, 0xD8]);
}

#[test]
fn animations_render_their_first_frame() {
    for name in ["animated.gif", "animated.webp"] {
        let rendered = render_default(name);
        let large = &rendered.renditions[2];
        assert_eq!((large.width, large.height), (320, 240), "{name}");
        let [r, g, b] = mean_rgb(&large.bytes);
        assert!(
            r > 200.0 && g < 40.0 && b < 40.0,
            "{name}: first frame is red, got {r} {g} {b}"
        );
    }
}

#[test]
fn every_accepted_input_format_renders() {
    for (name, format) in [
        ("progressive.jpg", "jpeg"),
        ("photo.webp", "webp"),
        ("photo.tiff", "tiff"),
        ("photo.avif", "avif"),
        ("photo.heic", "heic"),
        ("grey.jpg", "jpeg"),
        ("rgb16.png", "png"),
        ("alpha.png", "png"),
        ("animated.gif", "gif"),
    ] {
        let rendered = render_default(name);
        assert_eq!(rendered.source.format, format, "{name}");
        assert_eq!(rendered.renditions.len(), 3, "{name}");
        assert!(!rendered.placeholder.is_empty(), "{name}");
    }
}

#[test]
fn format_comes_from_the_bytes_not_the_name() {
    let rendered = render_default("mislabelled.png"); // a JPEG named .png
    assert_eq!(rendered.source.format, "jpeg");
}

#[test]
fn bad_inputs_are_refused_with_the_right_error() {
    let settings = RenderSettings::default();
    assert_eq!(expect_error("empty.jpg", &settings), RenderError::Empty);
    assert!(matches!(
        expect_error("text.jpg", &settings),
        RenderError::Unsupported(_)
    ));
    let truncated = expect_error("truncated.jpg", &settings);
    assert!(
        matches!(truncated, RenderError::Corrupt(_)),
        "{truncated:?}"
    );
    for name in ["image.svg", "doc.pdf"] {
        let err = expect_error(name, &settings);
        assert!(
            matches!(err, RenderError::Unsupported(_)),
            "{name}: {err:?}"
        );
    }
}

#[test]
fn pixel_bombs_are_refused_from_the_header_in_milliseconds() {
    let settings = RenderSettings::default();
    // GIF has its own, lower limit (a whole frame is decoded at once).
    for (name, w, h, max) in [
        ("bomb.gif", 65535, 65535, 16_000_000),
        ("bomb.jpg", 64250, 64250, 64_000_000),
        ("bomb.png", 20000, 20000, 64_000_000),
    ] {
        let started = std::time::Instant::now();
        let err = expect_error(name, &settings);
        let elapsed = started.elapsed();
        assert_eq!(
            err,
            RenderError::TooManyPixels {
                width: w,
                height: h,
                max
            },
            "{name}"
        );
        // A generous bound: decoding any of these would take seconds and gigabytes.
        assert!(elapsed.as_millis() < 500, "{name} took {elapsed:?}");
    }
}

#[test]
fn byte_limit_refuses_large_files() {
    let settings = RenderSettings {
        limits: Limits {
            max_bytes: 10_000,
            ..Limits::default()
        },
        ..RenderSettings::default()
    };
    assert!(matches!(
        expect_error("landscape.jpg", &settings),
        RenderError::TooLarge { max: 10_000, .. }
    ));
}

#[test]
fn avif_and_jpeg_outputs_are_encoded_when_asked() {
    let settings = RenderSettings {
        formats: parse_formats("avif,jpeg").unwrap(),
        ..RenderSettings::default()
    };
    settings
        .check_encoders()
        .expect("Debian's libvips writes AVIF");
    let rendered = render(&fixture("landscape.jpg"), &settings).unwrap();
    let avif = &rendered.renditions[0];
    assert_eq!(avif.format, Format::Avif);
    assert_eq!(&avif.bytes[4..12], b"ftypavif");
    assert_eq!(Image::decode(&avif.bytes).unwrap().width(), 150);
}

#[test]
fn per_preset_strategy_gives_the_same_sizes_and_close_pixels() {
    let shared = render_default("landscape.jpg");
    let per_preset = render(
        &fixture("landscape.jpg"),
        &RenderSettings {
            strategy: Strategy::PerPreset,
            ..RenderSettings::default()
        },
    )
    .unwrap();
    assert_eq!(sizes(&shared), sizes(&per_preset));
    for (a, b) in shared.renditions.iter().zip(&per_preset.renditions) {
        let (ma, mb) = (mean_rgb(&a.bytes), mean_rgb(&b.bytes));
        for band in 0..3 {
            assert!(
                (ma[band] - mb[band]).abs() < 2.0,
                "{}: {ma:?} vs {mb:?}",
                a.preset
            );
        }
    }
}

#[test]
fn placeholder_is_a_decodable_thumbhash_with_the_pictures_aspect() {
    use base64::Engine as _;
    let rendered = render_default("orient6.jpg");
    let hash = base64::engine::general_purpose::STANDARD
        .decode(&rendered.placeholder)
        .unwrap();
    assert!(hash.len() <= 32, "{} bytes", hash.len());
    let aspect = thumbhash::thumb_hash_to_approximate_aspect_ratio(&hash).unwrap();
    assert!((aspect - 800.0 / 1200.0).abs() < 0.1, "aspect {aspect}");
}
