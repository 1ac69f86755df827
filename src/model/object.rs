//! Which stored object a record is about, as S3 announced it.

/// A reference to one stored object, as announced by S3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    /// The decoded key, exactly as stored (`+` and `%XX` already resolved).
    pub key: String,
    pub size: Option<u64>,
    pub etag: Option<String>,
    pub version_id: Option<String>,
    /// S3's per-key event order (hex); compare with [`sequencer_is_newer`].
    pub sequencer: Option<String>,
}

/// Whether sequencer `a` is later than `b`. S3's values are hex strings of varying length,
/// compared after padding the shorter on the right with zeros. Emulators send constant values
/// ("0"), so equal values decide nothing.
pub fn sequencer_is_newer(a: &str, b: &str) -> bool {
    let width = a.len().max(b.len());
    let pad = |s: &str| format!("{:0<width$}", s.to_ascii_uppercase());
    pad(a) > pad(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequencers_compare_as_right_padded_hex() {
        assert!(sequencer_is_newer(
            "0055AED6DCD90281E6",
            "0055AED6DCD90281E5"
        ));
        assert!(sequencer_is_newer(
            "0055AED6DCD90281E501",
            "0055AED6DCD90281E5"
        ));
        assert!(sequencer_is_newer(
            "0055aed6dcd90281f0",
            "0055AED6DCD90281E5"
        ));
        assert!(!sequencer_is_newer("0", "0"));
        assert!(!sequencer_is_newer(
            "0055AED6DCD90281E5",
            "0055AED6DCD90281E5"
        ));
    }
}
