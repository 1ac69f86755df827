//! Store renditions and the manifest. Renditions are named by a digest of their source and
//! settings, so they never change once written and can be cached for a year; `manifest.json`
//! keeps its name, is revalidated by caches, and is written last, only over the manifest this
//! delivery read (or none): an older upload's job never replaces a newer one's.

use std::collections::BTreeMap;

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use tracing::warn;

use crate::config::{OutputLayout, PipelineConfig};
use crate::model::{
    sequencer_is_newer, Failure, Manifest, ManifestSource, ObjectRef, RenderSettings, Rendered,
    Rendition,
};
use crate::storage::{
    Fetched, ObjectStore, Precondition, PutObject, StorageError, MAX_KEY_BYTES, MAX_METADATA_BYTES,
};

/// Metadata travels as HTTP headers: keep values ASCII by percent-encoding the rest.
const METADATA_UNSAFE: &AsciiSet = &CONTROLS.add(b'%');

const MANIFEST: &str = "manifest.json";

/// A digest of everything in the settings that changes the renditions.
pub fn settings_fingerprint(settings: &RenderSettings) -> String {
    crate::digest::hex(
        format!(
            "{:?}|{:?}|{:?}|{:?}",
            settings.presets, settings.formats, settings.quality, settings.strategy
        )
        .as_bytes(),
    )
}

/// Where one original's outputs go: `OUTPUT_PREFIX` + the key below `INPUT_PREFIX` + `/`,
/// with the bucket's name in front in the `bucket` layout.
pub fn output_folder(config: &PipelineConfig, bucket: &str, key: &str) -> String {
    let relative = key.strip_prefix(&config.input_prefix).unwrap_or(key);
    match config.output_layout {
        OutputLayout::Key => format!("{}{relative}/", config.output_prefix),
        OutputLayout::Bucket => format!("{}{bucket}/{relative}/", config.output_prefix),
    }
}

/// The manifest's key for an original.
pub fn manifest_key(config: &PipelineConfig, bucket: &str, key: &str) -> String {
    format!("{}{MANIFEST}", output_folder(config, bucket, key))
}

/// A rendition's name: `<preset>.<digest of source ETag and settings>.<ext>`.
fn rendition_key(folder: &str, rendition: &Rendition, tag: &str) -> String {
    format!(
        "{folder}{}.{tag}.{}",
        rendition.preset,
        rendition.format.extension()
    )
}

/// The digest in rendition names: a new upload or new settings give new names.
pub fn content_tag(source_etag: &str, fingerprint: &str) -> String {
    crate::digest::hex(format!("{source_etag}|{fingerprint}").as_bytes())
}

/// Refuse, before anything is fetched or written, an original whose output keys would be
/// longer than S3 allows: otherwise some renditions would be written and then the rest fail.
pub fn check_key_length(config: &PipelineConfig, object: &ObjectRef) -> Result<(), Failure> {
    let folder = output_folder(config, &object.bucket, &object.key);
    let tag_len = content_tag("", "").len();
    let longest_name = config
        .render
        .presets
        .iter()
        .flat_map(|p| {
            config
                .render
                .formats
                .iter()
                .map(move |f| p.name.len() + tag_len + f.extension().len() + 2)
        })
        .chain([MANIFEST.len()])
        .max()
        .unwrap_or(0);
    let longest = folder.len() + longest_name;
    if longest > MAX_KEY_BYTES {
        return Err(Failure::permanent(
            "key_too_long",
            format!(
                "the thumbnails' keys would be {longest} bytes, over S3's limit of {MAX_KEY_BYTES}: \
                 shorten the upload's key by {} bytes",
                longest - MAX_KEY_BYTES
            ),
        ));
    }
    Ok(())
}

/// The manifest now stored for an original, with its ETag for a conditional write.
#[derive(Debug, Clone, Default)]
pub struct Current {
    pub manifest: Option<Manifest>,
    /// `None`: there is no manifest yet.
    pub etag: Option<String>,
}

/// Read the stored manifest of the original at `bucket`/`key`. One that does not parse is
/// treated as replaceable.
pub async fn current<S: ObjectStore>(
    store: &S,
    config: &PipelineConfig,
    bucket: &str,
    key: &str,
) -> Result<Current, Failure> {
    let key = manifest_key(config, bucket, key);
    Ok(match store.read(&config.output_bucket, &key).await? {
        None => Current::default(),
        Some(stored) => Current {
            manifest: serde_json::from_slice(&stored.bytes).ok(),
            etag: Some(stored.etag.unwrap_or_default()),
        },
    })
}

/// Why a delivery has nothing to write, judged from the stored manifest.
pub fn nothing_to_do(
    manifest: &Manifest,
    object: &ObjectRef,
    etag: Option<&str>,
    fingerprint: &str,
) -> Option<&'static str> {
    if let (Some(stored), Some(ours)) = (&manifest.source.sequencer, &object.sequencer) {
        if sequencer_is_newer(stored, ours) {
            return Some("superseded");
        }
    }
    is_current(manifest, etag, fingerprint).then_some("unchanged")
}

/// The manifest describes this source (by ETag) rendered with these settings.
pub fn is_current(manifest: &Manifest, etag: Option<&str>, fingerprint: &str) -> bool {
    etag.is_some() && manifest.source.etag.as_deref() == etag && manifest.settings == fingerprint
}

/// `source-key` and friends as S3 user metadata, leaving out `source-key` when it would not
/// fit S3's 2 KB (the manifest names the source anyway).
fn metadata(object: &ObjectRef, fetched: &Fetched) -> BTreeMap<String, String> {
    let mut metadata = BTreeMap::new();
    if let Some(etag) = &fetched.etag {
        metadata.insert("source-etag".to_string(), etag.clone());
    }
    if let Some(version) = &fetched.version_id {
        metadata.insert("source-version-id".to_string(), version.clone());
    }
    let key = utf8_percent_encode(&object.key, METADATA_UNSAFE).to_string();
    let used: usize = metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
    if used + "source-key".len() + key.len() <= MAX_METADATA_BYTES {
        metadata.insert("source-key".to_string(), key);
    }
    metadata
}

/// Write every rendition, then the manifest over `current` (and only over it), then remove the
/// renditions of the manifest replaced. Returns the manifest written, or `None` when the
/// original was overwritten meanwhile: then nothing is left behind, and the newer upload's
/// event renders it. (Without that check an older job still rendering could replace the
/// manifest after a newer delivery found it current and skipped.)
pub async fn store<S: ObjectStore>(
    store: &S,
    config: &PipelineConfig,
    object: &ObjectRef,
    fetched: &Fetched,
    rendered: &Rendered,
    current: &Current,
    fingerprint: &str,
) -> Result<Option<Manifest>, Failure> {
    let folder = output_folder(config, &object.bucket, &object.key);
    let etag = fetched.etag.clone().unwrap_or_else(|| {
        rendered
            .renditions
            .iter()
            .map(|r| crate::digest::hex(&r.bytes))
            .collect()
    });
    let tag = content_tag(&etag, fingerprint);
    let metadata = metadata(object, fetched);
    let put = |key: String, body: Vec<u8>, content_type: &str, cache_control: &str| PutObject {
        bucket: config.output_bucket.clone(),
        key,
        body,
        content_type: content_type.to_string(),
        cache_control: cache_control.to_string(),
        metadata: metadata.clone(),
        precondition: Precondition::None,
    };
    for rendition in &rendered.renditions {
        store
            .put(put(
                rendition_key(&folder, rendition, &tag),
                rendition.bytes.clone(),
                rendition.format.content_type(),
                &config.cache_control,
            ))
            .await?;
    }
    let origin = ManifestSource {
        bucket: Some(object.bucket.clone()),
        key: Some(object.key.clone()),
        etag: fetched.etag.clone(),
        version_id: fetched.version_id.clone(),
        sequencer: object.sequencer.clone(),
        ..Default::default()
    };
    let mut manifest = Manifest::new(rendered, origin, |r| rendition_key(&folder, r, &tag));
    manifest.settings = fingerprint.to_string();
    if fetched.etag.is_some() && store.head(&object.bucket, &object.key).await? != fetched.etag {
        for rendition in &manifest.renditions {
            if let Err(e) = store.delete(&config.output_bucket, &rendition.key).await {
                warn!(key = %crate::telemetry::printable(&rendition.key), error = %e, "could not delete an unused rendition");
            }
        }
        return Ok(None);
    }
    let mut write = put(
        format!("{folder}{MANIFEST}"),
        manifest.to_json(),
        "application/json",
        &config.manifest_cache_control,
    );
    write.precondition = match &current.etag {
        None => Precondition::Absent,
        Some(etag) => Precondition::Unchanged(etag.clone()),
    };
    match store.put(write).await {
        Ok(()) => {}
        // Another delivery wrote the manifest since we read it: decide again on the next try.
        Err(StorageError::Changed(why)) => {
            return Err(Failure::retryable(
                "manifest_conflict",
                format!("another delivery wrote this original's manifest meanwhile ({why})"),
            ))
        }
        Err(e) => return Err(e.into()),
    }
    remove_replaced(store, config, &folder, current, &manifest).await;
    Ok(Some(manifest))
}

/// Delete what the replaced manifest listed and the new one does not. A failure only leaves
/// an unreferenced object behind, so it is logged, not retried.
async fn remove_replaced<S: ObjectStore>(
    store: &S,
    config: &PipelineConfig,
    folder: &str,
    current: &Current,
    manifest: &Manifest,
) {
    let Some(old) = &current.manifest else { return };
    for rendition in &old.renditions {
        let kept = manifest.renditions.iter().any(|r| r.key == rendition.key);
        // Only our own folder: a manifest's contents are data, not instructions.
        if kept || !rendition.key.starts_with(folder) {
            continue;
        }
        if let Err(e) = store.delete(&config.output_bucket, &rendition.key).await {
            warn!(key = %crate::telemetry::printable(&rendition.key), error = %e, "could not delete a replaced rendition");
        }
    }
}

/// Delete an original's renditions and manifest, unless they describe a newer upload than the
/// deletion (S3 events for one key can arrive out of order): by S3's sequencers when both are
/// known and differ, else by whether the key holds an object again. Returns whether there was
/// anything to delete.
pub async fn remove<S: ObjectStore>(
    store: &S,
    config: &PipelineConfig,
    object: &ObjectRef,
) -> Result<bool, Failure> {
    let current = current(store, config, &object.bucket, &object.key).await?;
    let Some(manifest) = &current.manifest else {
        return Ok(false);
    };
    let newer_upload = match (&manifest.source.sequencer, &object.sequencer) {
        (Some(stored), Some(ours)) if stored != ours => sequencer_is_newer(stored, ours),
        // Emulators send one sequencer for every event: ask S3 what the key holds now.
        _ => store.head(&object.bucket, &object.key).await?.is_some(),
    };
    if newer_upload {
        return Ok(false);
    }
    let folder = output_folder(config, &object.bucket, &object.key);
    // The manifest first: without it the renditions are unreferenced, never half-described.
    store
        .delete(&config.output_bucket, &format!("{folder}{MANIFEST}"))
        .await?;
    for rendition in manifest
        .renditions
        .iter()
        .filter(|r| r.key.starts_with(&folder))
    {
        store.delete(&config.output_bucket, &rendition.key).await?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Env;

    fn config(buckets: &str) -> PipelineConfig {
        with_layout(buckets, "key")
    }

    fn with_layout(buckets: &str, layout: &str) -> PipelineConfig {
        PipelineConfig::from_env(&Env::from_pairs([
            ("OUTPUT_BUCKET", "out"),
            ("INPUT_BUCKETS", buckets),
            ("OUTPUT_LAYOUT", layout),
        ]))
        .unwrap()
    }

    fn object(key: &str) -> ObjectRef {
        ObjectRef {
            bucket: "in".into(),
            key: key.into(),
            size: None,
            etag: None,
            version_id: None,
            sequencer: None,
        }
    }

    #[test]
    fn output_folder_mirrors_the_key_below_the_input_prefix() {
        assert_eq!(
            output_folder(&config("in"), "in", "uploads/a/b c.jpg"),
            "thumbnails/a/b c.jpg/"
        );
    }

    #[test]
    fn the_bucket_layout_gives_each_bucket_a_folder_and_adding_one_moves_nothing() {
        let one = with_layout("in", "bucket");
        let two = with_layout("in,other", "bucket");
        assert_eq!(
            output_folder(&one, "in", "uploads/a.jpg"),
            "thumbnails/in/a.jpg/"
        );
        assert_eq!(
            output_folder(&two, "in", "uploads/a.jpg"),
            output_folder(&one, "in", "uploads/a.jpg")
        );
        assert_eq!(
            output_folder(&two, "other", "uploads/a.jpg"),
            "thumbnails/other/a.jpg/"
        );
    }

    #[test]
    fn keys_whose_outputs_would_pass_s3s_limit_are_refused_up_front() {
        let config = config("in");
        // 1,000 bytes is a legal input key; its outputs are longer.
        let long = format!("uploads/{}", "k".repeat(1000 - 8));
        let err = check_key_length(&config, &object(&long)).unwrap_err();
        assert_eq!(err.kind, "key_too_long");
        assert!(!err.retryable);
        assert!(check_key_length(&config, &object("uploads/a.jpg")).is_ok());
    }

    #[test]
    fn source_key_metadata_is_left_out_when_it_would_pass_2kb() {
        let fetched = Fetched {
            bytes: vec![],
            etag: Some("e".into()),
            version_id: None,
        };
        // 230 CJK characters: a 698-byte key, 2,078 bytes percent-encoded.
        let long = format!("uploads/{}", "写".repeat(230));
        let md = metadata(&object(&long), &fetched);
        assert!(!md.contains_key("source-key"));
        assert_eq!(md["source-etag"], "e");
        let short = metadata(&object("uploads/café.jpg"), &fetched);
        assert_eq!(short["source-key"], "uploads/caf%C3%A9.jpg");
    }

    #[test]
    fn a_newer_manifest_or_the_same_source_means_nothing_to_do() {
        let mut manifest: Manifest = serde_json::from_str(
            r#"{"source":{"etag":"e1","sequencer":"0055AED6DCD90281E6","bytes":1,"format":"jpeg","width":1,"height":1},
                "settings":"s","placeholder":"","renditions":[]}"#,
        )
        .unwrap();
        let mut older = object("uploads/a.jpg");
        older.sequencer = Some("0055AED6DCD90281E5".into());
        assert_eq!(
            nothing_to_do(&manifest, &older, Some("e0"), "s"),
            Some("superseded")
        );
        let mut newer = older.clone();
        newer.sequencer = Some("0055AED6DCD90281E7".into());
        assert_eq!(nothing_to_do(&manifest, &newer, Some("e2"), "s"), None);
        assert_eq!(
            nothing_to_do(&manifest, &newer, Some("e1"), "s"),
            Some("unchanged")
        );
        assert_eq!(nothing_to_do(&manifest, &newer, Some("e1"), "t"), None);
        manifest.source.sequencer = None;
        assert_eq!(nothing_to_do(&manifest, &older, Some("e0"), "s"), None);
    }
}
