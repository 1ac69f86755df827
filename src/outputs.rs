//! The manifest protocol: the one place that decides what an original's outputs are, when
//! they are current, and when they may be written, replaced or deleted. Every stage that
//! touches outputs (an upload's or a deletion's record, backfill's `--only-missing`, Batch
//! Operations through the same record) goes through here.
//!
//! - **Meaning.** `<folder>manifest.json` is a manifest (the upload it describes by ETag,
//!   version and sequencer, its renditions and failures) or a tombstone (the original was
//!   deleted; these renditions go or went with it). An unreadable or oversized one is
//!   replaceable (read at most [`MAX_MANIFEST_BYTES`]).
//! - **Truth.** What the key holds now (HEAD, or GET with `If-Match` on the event's ETag)
//!   decides. S3's sequencer orders events of one key (compared as S3 documents, right-padded
//!   to equal length) and is only ever a veto, and only when the key agrees: a stored
//!   sequencer never makes an upload skip or outputs go by itself, so a far-future value
//!   blocks nothing.
//! - **Writes.** Renditions first, then the manifest, conditionally (`If-Match` on the
//!   manifest read, `If-None-Match: *` when there was none): a delivery that lost a race
//!   retries and decides again. 412, 409 and 404 (S3's answer to `If-Match` on a key with no
//!   object) all mean "changed".
//! - **Deletes.** Only keys named exactly `<folder><preset>.<16 hex>.<ext>` ([`may_delete`]):
//!   never a manifest, never a nested folder, whatever a stored manifest lists. A manifest is
//!   never deleted (S3 has no conditional DeleteObject for general purpose buckets): a
//!   deletion replaces it, conditionally, with a tombstone listing the renditions, and then
//!   deletes them; a replaced upload's renditions are listed in the new manifest's `obsolete`.
//!   Either way a retry finds the list and finishes the job.

use crate::config::PipelineConfig;
use crate::model::{
    sequencer_is_newer, Deleted, Failure, Manifest, ManifestFailure, ManifestSource, ObjectRef,
    Rendered, Tombstone,
};
use crate::storage::{Fetched, ObjectStore, Precondition, PutObject, StorageError};
use crate::store::{self, manifest_key, output_folder};

/// A manifest is a few KB; anything much larger is not ours and is not read whole.
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// What `<folder>manifest.json` holds now, with its ETag for a conditional write.
#[derive(Debug, Clone, Default)]
pub struct Current {
    pub manifest: Option<Manifest>,
    pub tombstone: Option<Tombstone>,
    /// `None`: there is no `manifest.json` at all.
    pub etag: Option<String>,
}

impl Current {
    /// The sequencer last recorded for the key, by a manifest or a tombstone.
    fn sequencer(&self) -> Option<&String> {
        match (&self.manifest, &self.tombstone) {
            (Some(m), _) => m.source.sequencer.as_ref(),
            (_, Some(t)) => t.deleted.sequencer.as_ref(),
            _ => None,
        }
    }

    /// The precondition that writes over exactly this (and nothing newer).
    fn precondition(&self) -> Precondition {
        match &self.etag {
            None => Precondition::Absent,
            Some(etag) => Precondition::Unchanged(etag.clone()),
        }
    }
}

/// Read what the output folder says about the original at `bucket`/`key`.
pub async fn current<S: ObjectStore>(
    store: &S,
    config: &PipelineConfig,
    bucket: &str,
    key: &str,
) -> Result<Current, Failure> {
    let key = manifest_key(config, bucket, key);
    match store
        .read(&config.output_bucket, &key, MAX_MANIFEST_BYTES)
        .await
    {
        Ok(None) => Ok(Current::default()),
        Ok(Some(stored)) => Ok(Current {
            manifest: serde_json::from_slice(&stored.bytes).ok(),
            tombstone: serde_json::from_slice(&stored.bytes).ok(),
            etag: Some(stored.etag.unwrap_or_default()),
        }),
        // Not ours to parse: replaceable, so only its ETag is needed.
        Err(StorageError::TooLarge { .. }) => Ok(Current {
            etag: store.head(&config.output_bucket, &key).await?,
            ..Current::default()
        }),
        Err(e) => Err(e.into()),
    }
}

/// Whether `key` is a rendition of the original whose folder is `folder`: exactly
/// `<folder><preset>.<16 hex>.<ext>`. Anything else a manifest lists (the manifest itself, a
/// nested upload's folder, another original's outputs) is never deleted.
pub fn may_delete(folder: &str, key: &str) -> bool {
    let Some(name) = key.strip_prefix(folder) else {
        return false;
    };
    if name.contains('/') {
        return false;
    }
    let mut parts = name.rsplitn(3, '.');
    let (Some(ext), Some(tag), Some(preset)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    !preset.is_empty()
        && tag.len() == 16
        && tag
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && !ext.is_empty()
        && ext.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The manifest describes this source (by ETag) rendered in full with these settings.
pub fn is_current(manifest: &Manifest, etag: Option<&str>, fingerprint: &str) -> bool {
    etag.is_some()
        && manifest.source.etag.as_deref() == etag
        && manifest.settings == fingerprint
        && manifest.failures.is_empty()
}

/// What `backfill --only-missing` leaves alone: a manifest for this ETag and these settings
/// whose renditions all exist, and whose failures (if any) are the file's own fault and would
/// only be dead-lettered again (a redrive still renders those).
pub async fn is_done<S: ObjectStore>(
    store: &S,
    config: &PipelineConfig,
    bucket: &str,
    key: &str,
    etag: Option<&str>,
    fingerprint: &str,
) -> Result<bool, Failure> {
    let current = current(store, config, bucket, key).await?;
    let Some(m) = current.manifest else {
        return Ok(false);
    };
    let described = etag.is_some() && m.source.etag.as_deref() == etag && m.settings == fingerprint;
    if !described || m.failures.iter().any(|f| f.retryable) {
        return Ok(false);
    }
    renditions_exist(store, config, &m).await
}

/// Every rendition the manifest lists is there (one HEAD each).
async fn renditions_exist<S: ObjectStore>(
    store: &S,
    config: &PipelineConfig,
    manifest: &Manifest,
) -> Result<bool, Failure> {
    for rendition in &manifest.renditions {
        if store
            .head(&config.output_bucket, &rendition.key)
            .await?
            .is_none()
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether an upload's delivery has nothing to do, judged before (or, for events without an
/// ETag, after) the fetch. `etag` is the upload's. `Some("unchanged")`: the manifest is
/// current and complete (a newer sequencer for the same bytes is recorded, so an A-B-A
/// overwrite's older write cannot land after it). `Some("superseded")`: a newer event's
/// manifest describes what the key holds now.
pub async fn settled<S: ObjectStore>(
    store: &S,
    config: &PipelineConfig,
    object: &ObjectRef,
    etag: Option<&str>,
    current: &Current,
    fingerprint: &str,
) -> Result<Option<&'static str>, Failure> {
    let Some(m) = &current.manifest else {
        return Ok(None);
    };
    let stored = m.source.sequencer.as_deref();
    let ours = object.sequencer.as_deref();
    if is_current(m, etag, fingerprint) {
        if !renditions_exist(store, config, m).await? {
            return Ok(None);
        }
        if let (Some(stored), Some(ours)) = (stored, ours) {
            if sequencer_is_newer(ours, stored) {
                let mut newer = m.clone();
                newer.source.sequencer = Some(ours.to_string());
                put_manifest(store, config, object, newer.to_json(), current).await?;
            }
        }
        finish_clean_up(store, config, object, etag, current, fingerprint).await?;
        return Ok(Some("unchanged"));
    }
    // A veto, when the key agrees: it still holds what the newer event's manifest describes.
    if let (Some(stored), Some(ours)) = (stored, ours) {
        if sequencer_is_newer(stored, ours)
            && m.source.etag.is_some()
            && store.head(&object.bucket, &object.key).await? == m.source.etag
        {
            abandon(store, config, object, fingerprint).await?;
            return Ok(Some("superseded"));
        }
    }
    Ok(None)
}

/// The key no longer holds the upload this delivery is about (overwritten, or deleted before
/// it was processed): delete what an earlier, interrupted try of it may have written, unless
/// the stored manifest lists it.
pub async fn abandon<S: ObjectStore>(
    store: &S,
    config: &PipelineConfig,
    object: &ObjectRef,
    fingerprint: &str,
) -> Result<(), Failure> {
    let current = current(store, config, &object.bucket, &object.key).await?;
    drop_unlisted(
        store,
        config,
        object,
        object.etag.as_deref(),
        &current,
        fingerprint,
    )
    .await
}

/// The stored manifest describes what the key holds: finish what its writer, or an earlier
/// try of this delivery, left (a crash, a failed DELETE): the renditions it lists as
/// `obsolete`, and this delivery's own that it does not list.
async fn finish_clean_up<S: ObjectStore>(
    store: &S,
    config: &PipelineConfig,
    object: &ObjectRef,
    etag: Option<&str>,
    current: &Current,
    fingerprint: &str,
) -> Result<(), Failure> {
    if let Some(m) = &current.manifest {
        delete_listed(store, config, object, &m.obsolete).await?;
    }
    drop_unlisted(store, config, object, etag, current, fingerprint).await
}

/// Delete the renditions this upload's delivery writes (`etag` is the upload's) that the
/// stored manifest does not list: what an earlier, interrupted try of it left. No other
/// upload's delivery writes these names, so none in flight can need them.
async fn drop_unlisted<S: ObjectStore>(
    store: &S,
    config: &PipelineConfig,
    object: &ObjectRef,
    etag: Option<&str>,
    current: &Current,
    fingerprint: &str,
) -> Result<(), Failure> {
    let Some(etag) = etag else {
        return Ok(());
    };
    let listed = |key: &String| {
        current
            .manifest
            .as_ref()
            .is_some_and(|m| m.renditions.iter().any(|r| &r.key == key))
    };
    let ours: Vec<String> = store::rendition_keys(config, object, etag, fingerprint)
        .into_iter()
        .filter(|k| !listed(k))
        .collect();
    delete_listed(store, config, object, &ours).await
}

/// Write every rendition, then the manifest over `current` (and only over it), then delete
/// the renditions of the manifest replaced. Returns the manifest written, or `None` when the
/// original was overwritten meanwhile: then what was written is deleted again, and the newer
/// upload's event renders it.
pub async fn write<S: ObjectStore>(
    store: &S,
    config: &PipelineConfig,
    object: &ObjectRef,
    fetched: &Fetched,
    rendered: &Rendered,
    current: &Current,
    fingerprint: &str,
) -> Result<Option<Manifest>, Failure> {
    let keys = store::put_renditions(store, config, object, fetched, rendered, fingerprint).await?;
    let origin = origin(object, fetched, current);
    let mut manifest = Manifest::new(rendered, origin, |r| keys[&r.file_name()].clone());
    manifest.settings = fingerprint.to_string();
    if fetched.etag.is_some() && store.head(&object.bucket, &object.key).await? != fetched.etag {
        let written: Vec<String> = manifest.renditions.iter().map(|r| r.key.clone()).collect();
        delete_listed(store, config, object, &written).await?;
        return Ok(None);
    }
    replace(store, config, object, manifest, current)
        .await
        .map(Some)
}

/// An upload that cannot be rendered at all (a permanent failure: the file's own fault;
/// `object.size` is the size fetched) gets a manifest that says so and lists no rendition,
/// first upload or not. Over an older upload's manifest, the older thumbnails go, so no page
/// keeps showing a picture the key no longer holds. Over nothing, it tells `backfill
/// --only-missing` that this ETag was tried and failed for good, so the same file is not
/// dead-lettered again on every run. A manifest with failures is never current: a redrive,
/// a repeat event or a plain backfill still tries it again, and a new upload of the key (a
/// new ETag) renders it.
pub async fn write_failure<S: ObjectStore>(
    store: &S,
    config: &PipelineConfig,
    object: &ObjectRef,
    fetched: &Fetched,
    failure: &Failure,
    current: &Current,
    fingerprint: &str,
) -> Result<(), Failure> {
    let mut source = origin(object, fetched, current);
    source.bytes = object.size.unwrap_or_default();
    source.format = "unknown".into();
    let manifest = Manifest {
        source,
        settings: fingerprint.to_string(),
        placeholder: String::new(),
        renditions: Vec::new(),
        failures: vec![ManifestFailure {
            preset: "*".into(),
            format: "*".into(),
            kind: failure.kind.into(),
            reason: failure.message.clone(),
            retryable: failure.retryable,
        }],
        obsolete: Vec::new(),
    };
    if fetched.etag.is_some() && store.head(&object.bucket, &object.key).await? != fetched.etag {
        return Ok(());
    }
    replace(store, config, object, manifest, current)
        .await
        .map(|_| ())
}

/// The manifest's `source`: this upload, with the stored sequencer kept when the delivery has
/// none of its own (backfill, Batch Operations), so a later event still compares with it.
fn origin(object: &ObjectRef, fetched: &Fetched, current: &Current) -> ManifestSource {
    ManifestSource {
        bucket: Some(object.bucket.clone()),
        key: Some(object.key.clone()),
        etag: fetched.etag.clone(),
        version_id: fetched.version_id.clone(),
        sequencer: object
            .sequencer
            .clone()
            .or_else(|| current.sequencer().cloned()),
        ..Default::default()
    }
}

/// Write `manifest` over `current`, listing the renditions it makes obsolete, then delete them.
async fn replace<S: ObjectStore>(
    store: &S,
    config: &PipelineConfig,
    object: &ObjectRef,
    mut manifest: Manifest,
    current: &Current,
) -> Result<Manifest, Failure> {
    let listed_before = current
        .manifest
        .iter()
        .flat_map(|m| m.renditions.iter().map(|r| r.key.clone()));
    let pending_before = current.tombstone.iter().flat_map(|t| t.renditions.clone());
    manifest.obsolete = listed_before
        .chain(pending_before)
        .filter(|k| !manifest.renditions.iter().any(|r| &r.key == k))
        .collect();
    put_manifest(store, config, object, manifest.to_json(), current).await?;
    delete_listed(store, config, object, &manifest.obsolete).await?;
    Ok(manifest)
}

/// The conditional write of `manifest.json` over `current`. Another delivery's write since
/// it was read (412, 409) or a manifest deleted meanwhile (404 to `If-Match`) is a conflict:
/// retried, and decided again.
async fn put_manifest<S: ObjectStore>(
    store: &S,
    config: &PipelineConfig,
    object: &ObjectRef,
    body: Vec<u8>,
    current: &Current,
) -> Result<(), Failure> {
    let write = PutObject {
        bucket: config.output_bucket.clone(),
        key: manifest_key(config, &object.bucket, &object.key),
        body,
        content_type: "application/json".into(),
        cache_control: config.manifest_cache_control.clone(),
        metadata: Default::default(),
        precondition: current.precondition(),
    };
    match store.put(write).await {
        Ok(()) => Ok(()),
        Err(StorageError::Changed(why)) => Err(conflict(&why)),
        Err(StorageError::NotFound) if current.etag.is_some() => Err(conflict("404 to If-Match")),
        Err(e) => Err(e.into()),
    }
}

fn conflict(why: &str) -> Failure {
    Failure::retryable(
        "manifest_conflict",
        format!("another delivery wrote this original's manifest meanwhile ({why})"),
    )
}

/// Delete the listed renditions that are this original's to delete. A failure fails the
/// delivery, so that its retry finishes the job: what is left is still listed (a manifest's
/// `obsolete`, a tombstone) or is this delivery's own.
async fn delete_listed<S: ObjectStore>(
    store: &S,
    config: &PipelineConfig,
    object: &ObjectRef,
    keys: &[String],
) -> Result<(), Failure> {
    let folder = output_folder(config, &object.bucket, &object.key);
    for key in keys.iter().filter(|k| may_delete(&folder, k)) {
        store.delete(&config.output_bucket, key).await?;
    }
    Ok(())
}

/// What a deletion event came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// The key holds nothing: its outputs are deleted (the tombstone, which stays, lists them).
    Deleted(Tombstone),
    /// The key holds nothing and nothing was left to delete.
    NothingToDelete,
    /// The key holds the object the manifest describes (a noncurrent version was deleted, or
    /// the key was uploaded again): its outputs stay.
    Live,
    /// The key holds an object no manifest describes (deleting the current version made the
    /// previous one current, with no ObjectCreated event): render it.
    Render(ObjectRef),
}

/// An original was deleted (a delete, a delete marker, a lifecycle expiration).
pub async fn remove<S: ObjectStore>(
    store: &S,
    config: &PipelineConfig,
    object: &ObjectRef,
    fingerprint: &str,
) -> Result<Removal, Failure> {
    let current = current(store, config, &object.bucket, &object.key).await?;
    if let Some(live) = store.head(&object.bucket, &object.key).await? {
        let render = ObjectRef {
            etag: Some(live.clone()),
            version_id: None,
            size: None,
            ..object.clone()
        };
        if current
            .manifest
            .as_ref()
            .is_some_and(|m| m.source.etag.as_deref() == Some(live.as_str()))
        {
            // An earlier try of this event may have rendered it (`Render`) and lost the
            // manifest write to the upload's own event, or its writer may have crashed
            // before its clean-up.
            finish_clean_up(store, config, &render, Some(&live), &current, fingerprint).await?;
            return Ok(Removal::Live);
        }
        return Ok(Removal::Render(render));
    }
    let tombstone = match (&current.manifest, &current.tombstone) {
        (_, Some(tombstone)) => tombstone.clone(),
        (manifest, None) => {
            let listed = manifest.iter().flat_map(|m| {
                m.renditions
                    .iter()
                    .map(|r| r.key.clone())
                    .chain(m.obsolete.iter().cloned())
            });
            let tombstone = Tombstone {
                deleted: Deleted {
                    bucket: object.bucket.clone(),
                    key: object.key.clone(),
                    version_id: object.version_id.clone(),
                    sequencer: object
                        .sequencer
                        .clone()
                        .or_else(|| current.sequencer().cloned()),
                },
                renditions: listed.collect(),
            };
            put_manifest(store, config, object, tombstone.to_json(), &current).await?;
            tombstone
        }
    };
    delete_listed(store, config, object, &tombstone.renditions).await?;
    Ok(if tombstone.renditions.is_empty() {
        Removal::NothingToDelete
    } else {
        Removal::Deleted(tombstone)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_rendition_names_in_the_folder_may_be_deleted() {
        let folder = "thumbnails/a.jpg/";
        assert!(may_delete(
            folder,
            "thumbnails/a.jpg/thumb.0123456789abcdef.webp"
        ));
        for key in [
            "thumbnails/a.jpg/manifest.json",
            "thumbnails/a.jpg/b.jpg/thumb.0123456789abcdef.webp",
            "thumbnails/a.jpg/b.jpg/manifest.json",
            "thumbnails/b.jpg/thumb.0123456789abcdef.webp",
            "thumbnails/a.jpg/thumb.0123456789ABCDEF.webp",
            "thumbnails/a.jpg/thumb.0123456789abcde.webp",
            "thumbnails/a.jpg/.0123456789abcdef.webp",
            "thumbnails/a.jpg/thumb.0123456789abcdef.",
            "thumbnails/a.jpg/thumb.0123456789abcdef.we/bp",
            "uploads/a.jpg",
        ] {
            assert!(!may_delete(folder, key), "{key}");
        }
    }

    #[test]
    fn manifests_and_tombstones_parse_as_what_they_are() {
        let tombstone = Tombstone {
            deleted: Deleted {
                bucket: "in".into(),
                key: "uploads/a.jpg".into(),
                ..Default::default()
            },
            renditions: vec!["thumbnails/a.jpg/thumb.0123456789abcdef.webp".into()],
        };
        let json = tombstone.to_json();
        assert!(serde_json::from_slice::<Manifest>(&json).is_err());
        assert_eq!(
            serde_json::from_slice::<Tombstone>(&json).unwrap(),
            tombstone
        );
    }
}
