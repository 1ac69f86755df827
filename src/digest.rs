//! A short, stable digest for names and fingerprints (not for security): FNV-1a, 64 bits,
//! as 16 hex digits. Stable across builds and Rust versions, unlike `std`'s hasher.

pub fn hex(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn digests_are_the_published_fnv1a_values() {
        assert_eq!(super::hex(b""), "cbf29ce484222325");
        assert_eq!(super::hex(b"a"), "af63dc4c8601ec8c");
    }
}
