//! Handle each record: within the concurrency limit and the time left, admit it (our bucket,
//! under the input prefix), then fetch, render and store an upload, or delete a deletion's
//! outputs; logged and counted once, whatever it came to.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::OwnedSemaphorePermit;

use tracing::{info, warn};

use super::Pipeline;
use crate::events::Event;
use crate::fetch::{fetch, Fetch};
use crate::model::{Failure, Manifest, ObjectRef};
use crate::outputs::{self, Current, Removal};
use crate::render;
use crate::storage::{Fetched, ObjectStore, StorageError};
use crate::store::{check_key_length, manifest_key};
use crate::telemetry::{self, printable};

/// What one record came to, short of a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Done {
    Rendered {
        bytes_in: u64,
        bytes_out: u64,
    },
    /// Nothing to do, and why (logged as the outcome).
    Skipped(&'static str),
}

impl<S: ObjectStore> Pipeline<S> {
    /// Handle one record (an upload, or a deletion), within the concurrency limit.
    pub(super) async fn process_object(
        self: &Arc<Self>,
        object: &ObjectRef,
        removed: bool,
        start_by: Option<Instant>,
        begun: &AtomicBool,
    ) -> Result<Done, Failure> {
        // Shared with the render's blocking thread: the permit is returned only when both are
        // done, so a render that outlives its task (the deadline) still counts.
        let permit = Arc::new(
            Arc::clone(&self.limit)
                .acquire_owned()
                .await
                .expect("semaphore never closed"),
        );
        let started = Instant::now();
        if start_by.is_some_and(|s| started >= s) {
            let failure = Failure::retryable(
                super::outcome::NOT_STARTED,
                "not started: too little of the function's time was left",
            );
            info!(
                outcome = "retry",
                kind = failure.kind,
                "{}",
                failure.message
            );
            return Err(failure);
        }
        begun.store(true, Ordering::Relaxed);
        let result = if removed {
            self.remove(object, permit).await
        } else {
            self.fetch_render_store(object, permit).await
        };
        let elapsed = started.elapsed();
        match &result {
            Ok(Done::Rendered {
                bytes_in,
                bytes_out,
            }) => {
                info!(
                    outcome = "rendered",
                    bytes_in,
                    bytes_out,
                    ms = elapsed.as_millis() as u64
                );
                telemetry::record_rendered(*bytes_in, *bytes_out, elapsed);
            }
            Ok(Done::Skipped(why)) => info!(outcome = "skipped", reason = why),
            Err(failure) => {
                let outcome = if failure.retryable {
                    "retry"
                } else {
                    "dead_letter"
                };
                warn!(outcome, kind = failure.kind, error = %printable(&failure.message));
                telemetry::record_failure(failure);
            }
        }
        result
    }

    /// Whether a record is ours to act on: a configured bucket, a key under the input prefix,
    /// not a folder marker. `Ok(Some(why))` means acknowledge and do nothing.
    fn admit(&self, object: &ObjectRef) -> Result<Option<&'static str>, Failure> {
        if !self.config.input_buckets.contains(&object.bucket) {
            return Err(Failure::permanent(
                "foreign_bucket",
                format!(
                    "bucket `{}` is not one of INPUT_BUCKETS: refusing to read from it",
                    object.bucket
                ),
            ));
        }
        // Never work outside the input prefix: that is how outputs could feed back as inputs.
        if !object.key.starts_with(&self.config.input_prefix) {
            return Err(Failure::permanent(
                "outside_prefix",
                format!(
                    "key is outside INPUT_PREFIX `{}`: refusing to process it",
                    self.config.input_prefix
                ),
            ));
        }
        // The S3 console's "create folder" makes an empty object whose key ends in `/`.
        if object.key.ends_with('/') {
            return Ok(Some("folder_marker"));
        }
        Ok(None)
    }

    /// Fetch, render and store one original, unless the stored manifest says there is nothing
    /// to do (the same source and settings, complete, or a newer upload already rendered).
    async fn fetch_render_store(
        self: &Arc<Self>,
        object: &ObjectRef,
        permit: Arc<OwnedSemaphorePermit>,
    ) -> Result<Done, Failure> {
        if let Some(why) = self.admit(object)? {
            return Ok(Done::Skipped(why));
        }
        check_key_length(&self.config, object)?;
        let (store, config, fingerprint) = (&self.store, &self.config, &self.fingerprint);
        let current = outputs::current(store, config, &object.bucket, &object.key).await?;
        let settled = |etag: Option<String>| {
            let current = &current;
            async move {
                outputs::settled(store, config, object, etag.as_deref(), current, fingerprint).await
            }
        };
        if let Some(why) = settled(object.etag.clone()).await? {
            return self.settled(object, why, &current).await;
        }
        let mut fetched = match fetch(store, object, config).await {
            Ok(Fetch::Got(fetched)) => fetched,
            // What an interrupted earlier try wrote goes; the newer upload's event, or the
            // deletion's, does the rest. A user deleting an upload is not an operator's page.
            Ok(Fetch::Overwritten) => {
                outputs::abandon(store, config, object, fingerprint).await?;
                return Ok(Done::Skipped("superseded"));
            }
            // Only when the event names the upload (its ETag): a Batch Operations task naming
            // a key that is not there is more likely a wrong key, and is reported as such.
            Ok(Fetch::Deleted) if object.etag.is_some() => {
                outputs::abandon(store, config, object, fingerprint).await?;
                return Ok(Done::Skipped("deleted_before_processing"));
            }
            Ok(Fetch::Deleted) => return Err(StorageError::NotFound.into()),
            // Too large to download: the file's own fault, recorded like a failed render (the
            // GET named the event's ETag, so that is what the key holds).
            Err(failure) if failure.kind == "too_large" && object.etag.is_some() => {
                let named = Fetched {
                    bytes: Vec::new(),
                    etag: object.etag.clone(),
                    version_id: object.version_id.clone(),
                };
                outputs::write_failure(
                    store,
                    config,
                    object,
                    &named,
                    &failure,
                    &current,
                    fingerprint,
                )
                .await?;
                return Err(failure);
            }
            Err(failure) => return Err(failure),
        };
        if object.etag.is_none() {
            if let Some(why) = settled(fetched.etag.clone()).await? {
                return self.settled(object, why, &current).await;
            }
        }
        let pipeline = Arc::clone(self);
        // The bytes move to the render thread; `fetched` keeps the ETag and version for `store`.
        let bytes = std::mem::take(&mut fetched.bytes);
        let bytes_in = bytes.len() as u64;
        // libvips work is CPU-bound and blocking: keep it off the async threads.
        let held = Arc::clone(&permit);
        let rendered = tokio::task::spawn_blocking(move || {
            let _permit = held;
            let _running = pipeline.render_running();
            render::render(&bytes, &pipeline.config.render)
        })
        .await
        .map_err(|e| Failure::retryable("panic", format!("render task failed: {e}")))?;
        let rendered = match rendered {
            Ok(rendered) => rendered,
            Err(error) => {
                let failure = Failure::from(error);
                // The key holds a picture we cannot render: its manifest says so (and the
                // previous upload's thumbnails, if any, stop standing in for it).
                if !failure.retryable {
                    let object = ObjectRef {
                        size: Some(bytes_in),
                        ..object.clone()
                    };
                    outputs::write_failure(
                        store,
                        config,
                        &object,
                        &fetched,
                        &failure,
                        &current,
                        fingerprint,
                    )
                    .await?;
                }
                return Err(failure);
            }
        };
        let stored = outputs::write(
            store,
            config,
            object,
            &fetched,
            &rendered,
            &current,
            fingerprint,
        )
        .await?;
        drop(permit);
        let Some(manifest) = stored else {
            return Ok(Done::Skipped("superseded"));
        };
        // What was made is stored (the manifest lists what was not); the record still fails.
        // It is announced unless a retry may still make the rest.
        let incomplete = rendered.incomplete().map(Failure::from);
        if !incomplete.as_ref().is_some_and(|f| f.retryable) {
            self.announce_ready(object, &manifest).await?;
        }
        if let Some(incomplete) = incomplete {
            return Err(incomplete);
        }
        let bytes_out = rendered
            .renditions
            .iter()
            .map(|r| r.bytes.len() as u64)
            .sum();
        Ok(Done::Rendered {
            bytes_in,
            bytes_out,
        })
    }

    /// Nothing to do: `why`. The upload's thumbnails are current (`unchanged`: a repeated
    /// event, or the retry of a delivery whose event was not published): announced again,
    /// with the same `outcome_id`, so no outcome goes without its event.
    async fn settled(
        &self,
        object: &ObjectRef,
        why: &'static str,
        current: &Current,
    ) -> Result<Done, Failure> {
        if let (Some(manifest), "unchanged") = (&current.manifest, why) {
            self.announce_ready(object, manifest).await?;
        }
        Ok(Done::Skipped(why))
    }

    /// Publish `Thumbnails Ready` for `manifest`, stored for `object` (when events are on).
    async fn announce_ready(&self, object: &ObjectRef, manifest: &Manifest) -> Result<(), Failure> {
        let Some(events) = &self.events else {
            return Ok(());
        };
        let key = manifest_key(&self.config, &object.bucket, &object.key);
        let event = Event::ready(manifest, &key, object.sequencer.as_deref());
        events.publish_one(event).await
    }

    /// An original was deleted: with `SYNC_DELETES`, delete its outputs too, unless the key
    /// still holds what they describe; render what it holds when no manifest describes it.
    async fn remove(
        self: &Arc<Self>,
        object: &ObjectRef,
        permit: Arc<OwnedSemaphorePermit>,
    ) -> Result<Done, Failure> {
        if !self.config.sync_deletes {
            return Ok(Done::Skipped("deletions_not_followed"));
        }
        if let Some(why) = self.admit(object)? {
            return Ok(Done::Skipped(why));
        }
        Ok(
            match outputs::remove(&self.store, &self.config, object, &self.fingerprint).await? {
                Removal::Deleted(tombstone) => {
                    if let Some(events) = &self.events {
                        let event = Event::deleted(&tombstone.deleted, tombstone.renditions);
                        events.publish_one(event).await?;
                    }
                    Done::Skipped("outputs_deleted")
                }
                Removal::NothingToDelete => Done::Skipped("nothing_to_delete"),
                Removal::Live => Done::Skipped("live_object_kept"),
                Removal::Render(live) => return self.fetch_render_store(&live, permit).await,
            },
        )
    }
}
