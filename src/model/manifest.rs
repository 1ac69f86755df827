//! `manifest.json`: what was made from one original, written beside its renditions, or, once
//! the original is deleted, a tombstone saying so. What they mean and how they are compared,
//! written and replaced is the protocol in `crate::outputs`.

use serde::{Deserialize, Serialize};

use super::{Rendered, Rendition};

/// Where the original came from: an S3 object or a local file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestSource {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// S3's per-key event order of the upload rendered: an older event never replaces this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequencer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub bytes: u64,
    pub format: String,
    /// As displayed, after EXIF orientation.
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRendition {
    pub preset: String,
    pub format: String,
    pub content_type: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    /// Object key or file path of the rendition.
    pub key: String,
}

/// A rendition that could not be made (the others were): listed so no reader mistakes a
/// missing file for one that was never asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFailure {
    pub preset: String,
    pub format: String,
    /// Stable error kind, as in logs and the DLQ (`encode`, `corrupt`, ...).
    pub kind: String,
    pub reason: String,
    /// A shortage on our side, not the file's fault: `backfill --only-missing` renders it
    /// again (a redrive or a new event always does).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retryable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub source: ManifestSource,
    /// A digest of the presets, formats, quality and strategy that made the renditions: a
    /// delivery with the same source ETag and settings has nothing to do.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub settings: String,
    /// The `THUMBS_RULES` rule the original's key followed (`default` for keys no rule names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// ThumbHash (base64) to show while the real thumbnail loads.
    pub placeholder: String,
    pub renditions: Vec<ManifestRendition>,
    /// Present only when some renditions failed (or the whole upload did: then
    /// `renditions` is empty). A manifest with failures is never current: the next delivery
    /// of its upload renders it again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<ManifestFailure>,
    /// Renditions of the upload this manifest replaced, deleted after it was written: a
    /// retry of a delivery stopped in between deletes them again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub obsolete: Vec<String>,
}

/// What a deleted original's `manifest.json` becomes: written (conditionally) before its
/// renditions are deleted, so a retry finds what is left to delete, and kept, so a render
/// still in flight for the deleted upload cannot write its manifest after the deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    pub deleted: Deleted,
    /// The renditions the deletion removes (or removed).
    pub renditions: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    pub bucket: String,
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequencer: Option<String>,
}

impl Manifest {
    /// Describe `rendered`; `origin` names the original (its size and shape are filled in
    /// here), `key_of` says where each rendition is stored.
    pub fn new(
        rendered: &Rendered,
        origin: ManifestSource,
        key_of: impl Fn(&Rendition) -> String,
    ) -> Self {
        Manifest {
            source: ManifestSource {
                bytes: rendered.source_bytes,
                format: rendered.source.format.to_string(),
                width: rendered.source.width,
                height: rendered.source.height,
                ..origin
            },
            settings: String::new(),
            rule: None,
            placeholder: rendered.placeholder.clone(),
            renditions: rendered
                .renditions
                .iter()
                .map(|r| ManifestRendition {
                    preset: r.preset.clone(),
                    format: r.format.to_string(),
                    content_type: r.format.content_type().into(),
                    width: r.width,
                    height: r.height,
                    bytes: r.bytes.len() as u64,
                    key: key_of(r),
                })
                .collect(),
            failures: rendered
                .failed
                .iter()
                .map(|f| ManifestFailure {
                    preset: f.preset.clone(),
                    format: f.format.to_string(),
                    kind: f.error.kind().into(),
                    reason: f.error.to_string(),
                    retryable: f.error.is_retryable(),
                })
                .collect(),
            obsolete: Vec::new(),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("manifest serialises")
    }
}

impl Tombstone {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("tombstone serialises")
    }
}
