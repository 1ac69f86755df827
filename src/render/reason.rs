//! libvips' error text turned into a reason for the person who uploaded the file: libvips'
//! operation and class names removed, a plain sentence kept, never an empty string.

/// True when libvips failed for lack of memory, temporary disk or file handles, or of a codec
/// this installation should have (a deployment fault): the same bytes may well succeed on
/// another try, or after a fix and a redrive, so this is not the file's fault.
pub fn is_resource_failure(message: &str) -> bool {
    let text = message.to_ascii_lowercase();
    // libheif says "Memory allocation error: Security limit exceeded" for images over its
    // size limit: a property of the file, not of the machine.
    if text.contains("security limit") {
        return false;
    }
    [
        "out of memory",
        "cannot allocate",
        "unable to allocate",
        "memory allocation",
        "no space left",
        "too many open files",
        "unable to open temp",
        "tmpfile",
        "temp file",
        "no decoding plugin",
        "no encoding plugin",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

/// True when libnsgif itself said "Out of memory" (its NSGIF_ERR_OOM text, capitalised, a
/// line of its own): on 8.14 to 8.18 that follows libvips' gifload refusing the canvas a GIF's
/// first frame asks for ("bad image dimensions"). libvips' own allocator says "out of memory
/// --- size == ..." instead, which stays a shortage.
pub fn is_gif_decoder_oom(message: &str) -> bool {
    message.split(['\n', ';']).any(|line| {
        let line = line.trim();
        // After the loader's name ("gifload_buffer: "), if any.
        line.split_once(": ").map_or(line, |(_, rest)| rest) == "Out of memory"
    })
}

/// The sentences of a libvips message that speak about the file, without libvips' prefixes
/// (`VipsJpeg: `, `tiff2vips: `, `gifload_buffer: `) and without lines that only say which
/// libvips call gave up. `fallback` is used when nothing is left.
pub fn for_uploader(message: &str, fallback: &str) -> String {
    let mut kept: Vec<String> = Vec::new();
    for line in message.split(['\n', ';']) {
        let mut line = line.trim();
        // Strip leading one-word prefixes ("VipsJpeg:", "heif:", "magick2vips:").
        while let Some((head, rest)) = line.split_once(": ") {
            if head.contains(char::is_whitespace) {
                break;
            }
            line = rest.trim();
        }
        let lower = line.to_ascii_lowercase();
        let internal = lower.contains("vips")
            || lower.contains("foreign")
            || lower.contains("magick")
            || lower.starts_with("unable to read")
            || lower.starts_with("unable to load")
            || lower.starts_with("unable to call")
            || lower.contains("@ error/")
            || lower == "libvips failed without a message"
            // Where libvips' pipeline stopped, not what is wrong with the file.
            || lower.starts_with("error in tile")
            || lower == "out of order read";
        if line.is_empty() || internal || kept.iter().any(|k| k == line) {
            continue;
        }
        kept.push(line.trim_end_matches('.').to_string());
    }
    if kept.is_empty() {
        fallback.to_string()
    } else {
        kept.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libvips_prefixes_and_call_names_are_removed() {
        assert_eq!(
            for_uploader(
                "VipsJpeg: Premature end of JPEG file; VipsJpeg: out of order read",
                "x"
            ),
            "Premature end of JPEG file"
        );
        assert_eq!(
            for_uploader("Premature end of input file; error in tile 0 x 296", "x"),
            "Premature end of input file"
        );
        assert_eq!(
            for_uploader(
                "magick2vips: unable to read file \"buffer\"; VipsForeignLoad: buffer is not in a known format",
                "x"
            ),
            "buffer is not in a known format"
        );
        assert_eq!(
            for_uploader(
                "heif: Invalid input: Unspecified: Bitstream not supported",
                "x"
            ),
            "Invalid input: Unspecified: Bitstream not supported"
        );
        assert_eq!(for_uploader("", "fallback"), "fallback");
        assert_eq!(
            for_uploader("tiff2vips: unable to read file \"x\"", "fallback"),
            "fallback"
        );
        assert_eq!(
            for_uploader("libvips failed without a message", "fallback"),
            "fallback"
        );
    }

    #[test]
    fn machine_shortages_are_resource_failures_and_file_limits_are_not() {
        assert!(is_resource_failure(
            "vips_malloc: out of memory --- size == 48MB"
        ));
        assert!(is_resource_failure("tiff2vips: Cannot allocate memory"));
        assert!(is_resource_failure(
            "vips__temp_name: unable to open temp file: No space left on device"
        ));
        assert!(!is_resource_failure(
            "heif: Memory allocation error: Security limit exceeded: Image size 10x20000"
        ));
        assert!(!is_resource_failure("VipsJpeg: Premature end of JPEG file"));
    }

    #[test]
    fn only_the_gif_decoders_own_out_of_memory_is_told_apart() {
        assert!(is_gif_decoder_oom(
            "gifload: bad image dimensions; gifload_buffer: Out of memory"
        ));
        assert!(!is_gif_decoder_oom(
            "vips_malloc: out of memory --- size == 48MB"
        ));
        assert!(!is_gif_decoder_oom("gifload: Premature end of input file"));
    }

    #[test]
    fn a_codec_missing_from_this_installation_is_not_the_files_fault() {
        // Debian 13's libheif loads its HEVC decoder as a plugin: a layer deployed without
        // LIBHEIF_PLUGIN_PATH cannot read a valid HEIC, which must not be called corrupt.
        assert!(is_resource_failure(
            "heifload: No decoding plugin installed for this compression format (4.3000)"
        ));
        assert!(is_resource_failure(
            "heifsave: No encoding plugin installed for this compression format"
        ));
    }
}
