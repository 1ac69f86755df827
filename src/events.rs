//! Events when an upload is settled: one EventBridge entry per outcome, so the app that
//! uploaded a file learns when its thumbnails exist, why it was refused, or that its outputs
//! went with it, without polling `manifest.json` or reading the dead-letter queue.
//!
//! - **When.** Published after the outcome is stored: a `Thumbnails Ready` after the manifest
//!   is written (or found current: a retry, or a repeated S3 event, publishes again), a
//!   `Thumbnails Deleted` after the tombstone and the deletes, an `Upload Refused` after its
//!   dead letter was sent. A failed publish fails the record (retried; see `batch::record`)
//!   or hands its message back (`report::deliver`), so delivery is at least once.
//! - **Ids.** `outcome_id` is a digest of what makes the outcome (see [`outcome_id`]): every
//!   delivery of the same outcome carries the same one, and consumers de-duplicate on it.
//! - **Size.** An entry over EventBridge's limit loses renditions from its end until it fits
//!   (`truncated`, `renditions_omitted`); it is never dropped. The manifest has the full list.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
#[cfg(test)]
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::{Deleted, Failure, Manifest, ManifestFailure, ManifestRendition, ObjectRef};

/// The version of every `detail` this code writes (`docs/events/v1/`).
pub const SCHEMA_VERSION: &str = "1";
pub const READY: &str = "Thumbnails Ready";
pub const REFUSED: &str = "Upload Refused";
pub const DELETED: &str = "Thumbnails Deleted";
/// The kind of a record whose event could not be published (retried like a shortage).
pub const NOT_PUBLISHED: &str = "event_not_published";

/// EventBridge's limit on one PutEvents entry (and on the whole call), which must be *less*
/// than this, as it counts it: Source, DetailType and Detail in UTF-8 bytes (no Time or
/// Resources are sent). AWS's "Calculating PutEvents event entry size" page.
pub const MAX_ENTRY_BYTES: usize = 256 * 1024;
/// PutEvents takes at most ten entries per call.
pub const MAX_ENTRIES: usize = 10;
/// The longest one PutEvents call may take (the SDK's own default has no limit).
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// The `detail` of every event: the upload, then what the outcome adds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detail {
    pub schema_version: String,
    pub outcome_id: String,
    pub bucket: String,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequencer: Option<String>,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Renditions were left out to keep the entry within EventBridge's limit.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub renditions_omitted: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// What each detail type adds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Outcome {
    Ready {
        settings: String,
        /// The `THUMBS_RULES` rule the key followed (as in the manifest).
        #[serde(skip_serializing_if = "Option::is_none")]
        rule: Option<String>,
        manifest_key: String,
        placeholder: String,
        renditions: Vec<ManifestRendition>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        failures: Vec<ManifestFailure>,
    },
    Refused {
        kind: String,
        reason: String,
        /// `false`: a redrive may still succeed (the failure was on our side: a shortage, a
        /// timeout, a crash), `true`: the file itself is refused.
        #[serde(rename = "final")]
        is_final: bool,
    },
    Deleted {
        renditions: Vec<String>,
    },
}

/// One event, before it is addressed to a bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub detail_type: &'static str,
    pub detail: Detail,
}

/// A digest of the parts (as a JSON array, so no two lists of parts read alike): 32 hex.
pub fn outcome_id(parts: &[Option<&str>]) -> String {
    let text = serde_json::to_string(parts).expect("strings serialize");
    Sha256::digest(text.as_bytes())[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Detail {
    /// The detail of the outcome of `upload` (bucket, key), identified by `id_parts` (see
    /// [`outcome_id`]).
    fn new(
        upload: (&str, &str),
        id_parts: &[Option<&str>],
        version_id: Option<&str>,
        etag: Option<&str>,
        sequencer: Option<&str>,
        outcome: Outcome,
    ) -> Detail {
        Detail {
            schema_version: SCHEMA_VERSION.into(),
            outcome_id: outcome_id(id_parts),
            bucket: upload.0.to_string(),
            key: upload.1.to_string(),
            version_id: version_id.map(str::to_string),
            etag: etag.map(str::to_string),
            sequencer: sequencer.map(str::to_string),
            outcome,
            truncated: false,
            renditions_omitted: 0,
        }
    }
}

impl Event {
    /// The thumbnails `manifest` (stored at `manifest_key`) lists are ready. `sequencer`: the
    /// delivery's, when it has one (a repeat of the same bytes with a newer sequencer is a new
    /// upload: the manifest records it too).
    pub fn ready(manifest: &Manifest, manifest_key: &str, sequencer: Option<&str>) -> Event {
        let s = &manifest.source;
        let sequencer = sequencer.or(s.sequencer.as_deref());
        let (bucket, key) = (s.bucket.as_deref(), s.key.as_deref());
        // The manifest's own record of the upload, written once by the delivery that rendered
        // it and read back by every later one: the id is the same on every delivery.
        let id = [
            Some(READY),
            bucket,
            key,
            s.etag.as_deref(),
            s.version_id.as_deref(),
            sequencer,
            Some(&manifest.settings),
        ];
        let outcome = Outcome::Ready {
            settings: manifest.settings.clone(),
            rule: manifest.rule.clone(),
            manifest_key: manifest_key.to_string(),
            placeholder: manifest.placeholder.clone(),
            renditions: manifest.renditions.clone(),
            failures: manifest.failures.clone(),
        };
        let upload = (bucket.unwrap_or_default(), key.unwrap_or_default());
        let (version, etag) = (s.version_id.as_deref(), s.etag.as_deref());
        Event {
            detail_type: READY,
            detail: Detail::new(upload, &id, version, etag, sequencer, outcome),
        }
    }

    /// The upload `object` was refused with `failure` (its reason is the dead letter's).
    pub fn refused(object: &ObjectRef, failure: &Failure, is_final: bool) -> Event {
        let (version, etag, sequencer) = (
            object.version_id.as_deref(),
            object.etag.as_deref(),
            object.sequencer.as_deref(),
        );
        // What S3 said of the upload (the same on every delivery of its event) and the kind.
        let id = [
            Some(REFUSED),
            Some(&object.bucket),
            Some(&object.key),
            etag,
            version,
            sequencer,
            Some(failure.kind),
        ];
        let outcome = Outcome::Refused {
            kind: failure.kind.to_string(),
            reason: failure.message.clone(),
            is_final,
        };
        let upload = (object.bucket.as_str(), object.key.as_str());
        Event {
            detail_type: REFUSED,
            detail: Detail::new(upload, &id, version, etag, sequencer, outcome),
        }
    }

    /// The outputs of the deleted original were removed. `deleted` is the tombstone's record
    /// of the deletion (written once, read back by retries and later deletion events).
    pub fn deleted(deleted: &Deleted, renditions: Vec<String>) -> Event {
        let (version, sequencer) = (deleted.version_id.as_deref(), deleted.sequencer.as_deref());
        let id = [
            Some(DELETED),
            Some(&deleted.bucket),
            Some(&deleted.key),
            version,
            sequencer,
        ];
        let upload = (deleted.bucket.as_str(), deleted.key.as_str());
        let outcome = Outcome::Deleted { renditions };
        Event {
            detail_type: DELETED,
            detail: Detail::new(upload, &id, version, None, sequencer, outcome),
        }
    }

    /// The PutEvents entry, cut to fit [`MAX_ENTRY_BYTES`]: renditions go from the end
    /// (halving what is left out until it fits, then one at a time back in).
    pub fn entry(&self, bus: &str, source: &str) -> Entry {
        let entry = |detail: &Detail| Entry {
            bus: bus.to_string(),
            source: source.to_string(),
            detail_type: self.detail_type.to_string(),
            detail: serde_json::to_string(detail).expect("detail serializes"),
        };
        let whole = entry(&self.detail);
        if whole.size() < MAX_ENTRY_BYTES {
            return whole;
        }
        let count = match &self.detail.outcome {
            Outcome::Ready { renditions, .. } => renditions.len(),
            Outcome::Deleted { renditions } => renditions.len(),
            Outcome::Refused { .. } => 0,
        };
        let cut = |keep: usize| {
            let mut detail = self.detail.clone();
            match &mut detail.outcome {
                Outcome::Ready { renditions, .. } => renditions.truncate(keep),
                Outcome::Deleted { renditions } => renditions.truncate(keep),
                Outcome::Refused { .. } => {}
            }
            detail.truncated = true;
            detail.renditions_omitted = count - keep;
            entry(&detail)
        };
        // The largest `keep` that fits: entries grow with `keep`.
        let (mut fits, mut over) = (0, count);
        while over - fits > 1 {
            let mid = (fits + over) / 2;
            if cut(mid).size() < MAX_ENTRY_BYTES {
                fits = mid;
            } else {
                over = mid;
            }
        }
        cut(fits)
    }
}

/// One PutEvents entry, as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub bus: String,
    pub source: String,
    pub detail_type: String,
    pub detail: String,
}

impl Entry {
    /// What EventBridge counts against [`MAX_ENTRY_BYTES`].
    pub fn size(&self) -> usize {
        self.source.len() + self.detail_type.len() + self.detail.len()
    }
}

/// One result per entry, in order: `Err` holds EventBridge's code and message.
pub type Published = Vec<Result<(), String>>;

/// Where events go: PutEvents of up to [`MAX_ENTRIES`] entries.
pub trait EventBus: Send + Sync + 'static {
    fn put_events<'a>(
        &'a self,
        entries: &'a [Entry],
        timeout: Duration,
    ) -> Pin<Box<dyn Future<Output = Published> + Send + 'a>>;
}

/// The bus events go to (`EVENT_BUS`) and their `source` (`EVENT_SOURCE`).
#[derive(Clone)]
pub struct Publisher {
    bus: Arc<dyn EventBus>,
    name: String,
    source: String,
}

impl Publisher {
    pub fn new(bus: Arc<dyn EventBus>, name: impl Into<String>, source: impl Into<String>) -> Self {
        Publisher {
            bus,
            name: name.into(),
            source: source.into(),
        }
    }

    /// Publish `events`, in calls of at most ten entries and under [`MAX_ENTRY_BYTES`] in all; one
    /// result per event, in order.
    pub async fn publish(&self, events: &[Event]) -> Published {
        let entries: Vec<Entry> = events
            .iter()
            .map(|e| e.entry(&self.name, &self.source))
            .collect();
        let mut results = Vec::with_capacity(entries.len());
        let mut start = 0;
        while start < entries.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < entries.len()
                && end - start < MAX_ENTRIES
                && (end == start || bytes + entries[end].size() < MAX_ENTRY_BYTES)
            {
                bytes += entries[end].size();
                end += 1;
            }
            let chunk = &entries[start..end];
            let mut sent = self.bus.put_events(chunk, PUBLISH_TIMEOUT).await;
            sent.resize(chunk.len(), Err("no result for this entry".into()));
            results.extend(sent);
            start = end;
        }
        results
    }

    /// Publish one record's event: a failure is retryable (the record is retried, and the
    /// retry publishes again with the same `outcome_id`).
    pub async fn publish_one(&self, event: Event) -> Result<(), Failure> {
        match self.publish(std::slice::from_ref(&event)).await.pop() {
            Some(Ok(())) => Ok(()),
            Some(Err(why)) => Err(not_published(&why)),
            None => Err(not_published("no result")),
        }
    }
}

fn not_published(why: &str) -> Failure {
    Failure::retryable(
        NOT_PUBLISHED,
        format!("the outcome is stored but its event could not be published ({why}); retried"),
    )
}

/// EventBridge through the AWS SDK.
pub struct EventBridgeBus {
    client: aws_sdk_eventbridge::Client,
}

impl EventBridgeBus {
    pub fn new(client: aws_sdk_eventbridge::Client) -> Self {
        EventBridgeBus { client }
    }
}

impl EventBus for EventBridgeBus {
    fn put_events<'a>(
        &'a self,
        entries: &'a [Entry],
        timeout: Duration,
    ) -> Pin<Box<dyn Future<Output = Published> + Send + 'a>> {
        use aws_sdk_eventbridge::error::DisplayErrorContext;
        use aws_sdk_eventbridge::types::PutEventsRequestEntry;
        Box::pin(async move {
            let all = |why: String| entries.iter().map(|_| Err(why.clone())).collect();
            let request = entries.iter().map(|e| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(&e.bus)
                    .source(&e.source)
                    .detail_type(&e.detail_type)
                    .detail(&e.detail)
                    .build()
            });
            let call = self
                .client
                .put_events()
                .set_entries(Some(request.collect()))
                .send();
            match tokio::time::timeout(timeout, call).await {
                Err(_) => all(format!("PutEvents timed out after {timeout:?}")),
                Ok(Err(e)) => all(DisplayErrorContext(e).to_string()),
                // Partial failures (FailedEntryCount): each result entry, in request order,
                // has an EventId or an ErrorCode.
                Ok(Ok(out)) => out
                    .entries()
                    .iter()
                    .map(|r| match r.error_code() {
                        None => Ok(()),
                        Some(code) => Err(format!("{code}: {}", r.error_message().unwrap_or(""))),
                    })
                    .collect(),
            }
        })
    }
}

/// A bus in memory, for tests: what was published, and faults to inject.
#[cfg(test)]
#[derive(Default)]
pub struct MemoryBus {
    pub published: Mutex<Vec<Entry>>,
    /// Every entry fails (a publishing outage) while set.
    pub outage: std::sync::atomic::AtomicBool,
    /// Entries whose detail type is this, or whose detail contains it, fail (a partial failure
    /// of one PutEvents call).
    pub refuse: Mutex<Option<String>>,
    /// PutEvents calls made.
    pub calls: std::sync::atomic::AtomicUsize,
}

#[cfg(test)]
impl MemoryBus {
    /// The details published, as JSON, with their detail type.
    pub fn details(&self) -> Vec<(String, serde_json::Value)> {
        self.published
            .lock()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e.detail_type.clone(),
                    serde_json::from_str(&e.detail).unwrap(),
                )
            })
            .collect()
    }
}

#[cfg(test)]
impl EventBus for MemoryBus {
    fn put_events<'a>(
        &'a self,
        entries: &'a [Entry],
        _timeout: Duration,
    ) -> Pin<Box<dyn Future<Output = Published> + Send + 'a>> {
        use std::sync::atomic::Ordering::Relaxed;
        assert!(entries.len() <= MAX_ENTRIES, "PutEvents refuses over ten");
        let total: usize = entries.iter().map(Entry::size).sum();
        assert!(total < MAX_ENTRY_BYTES, "PutEvents refuses 256 KB and more");
        self.calls.fetch_add(1, Relaxed);
        let refused = self.refuse.lock().unwrap().clone();
        let results = entries
            .iter()
            .map(|e| {
                if self.outage.load(Relaxed) {
                    return Err("InternalFailure: outage".to_string());
                }
                if refused
                    .as_deref()
                    .is_some_and(|r| e.detail_type == r || e.detail.contains(r))
                {
                    return Err("ThrottlingException: refused".to_string());
                }
                self.published.lock().unwrap().push(e.clone());
                Ok(())
            })
            .collect();
        Box::pin(std::future::ready(results))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ManifestSource;

    fn manifest(renditions: usize, key_len: usize) -> Manifest {
        Manifest {
            source: ManifestSource {
                bucket: Some("in".into()),
                key: Some("uploads/a.jpg".into()),
                etag: Some("\"e1\"".into()),
                version_id: Some("v1".into()),
                sequencer: Some("0A".into()),
                ..Default::default()
            },
            settings: "0123456789abcdef".into(),
            rule: None,
            placeholder: "ph".into(),
            renditions: (0..renditions)
                .map(|i| ManifestRendition {
                    preset: format!("p{i}"),
                    format: "webp".into(),
                    content_type: "image/webp".into(),
                    width: 1,
                    height: 1,
                    bytes: 1,
                    key: format!("{}{i}", "k".repeat(key_len)),
                })
                .collect(),
            failures: Vec::new(),
            obsolete: Vec::new(),
        }
    }

    #[test]
    fn the_outcome_id_is_the_same_for_the_same_upload_and_differs_for_a_new_one() {
        let m = manifest(3, 10);
        let first = Event::ready(&m, "thumbnails/a.jpg/manifest.json", None);
        let again = Event::ready(&m, "thumbnails/a.jpg/manifest.json", Some("0A"));
        assert_eq!(first.detail.outcome_id, again.detail.outcome_id);
        assert_eq!(first.detail.outcome_id.len(), 32);
        let mut other = m.clone();
        other.source.etag = Some("\"e2\"".into());
        let newer = Event::ready(&other, "thumbnails/a.jpg/manifest.json", None);
        assert_ne!(first.detail.outcome_id, newer.detail.outcome_id);
        let same_bytes_later = Event::ready(&m, "thumbnails/a.jpg/manifest.json", Some("0B"));
        assert_ne!(first.detail.outcome_id, same_bytes_later.detail.outcome_id);
    }

    #[test]
    fn an_oversized_event_is_cut_not_dropped() {
        // 400 renditions with 1,000-byte keys: about 500 KB of detail.
        let m = manifest(400, 1_000);
        let event = Event::ready(&m, "thumbnails/a.jpg/manifest.json", None);
        let entry = event.entry("default", "thumbs");
        assert!(entry.size() < MAX_ENTRY_BYTES, "{}", entry.size());
        let detail: Detail = serde_json::from_str(&entry.detail).unwrap();
        assert!(detail.truncated);
        let Outcome::Ready { renditions, .. } = &detail.outcome else {
            panic!("not ready: {detail:?}");
        };
        assert!(!renditions.is_empty());
        assert_eq!(renditions.len() + detail.renditions_omitted, 400);
        assert_eq!(renditions[..], m.renditions[..renditions.len()]);
        // One more would not fit: as many as fit are kept.
        let mut one_more = detail.clone();
        if let Outcome::Ready { renditions, .. } = &mut one_more.outcome {
            renditions.push(m.renditions[renditions.len()].clone());
        }
        let bigger = serde_json::to_string(&one_more).unwrap().len();
        assert!(bigger + "thumbs".len() + READY.len() >= MAX_ENTRY_BYTES);
        assert_eq!(detail.outcome_id, event.detail.outcome_id);
    }

    #[test]
    fn a_small_event_is_sent_whole_with_snake_case_fields() {
        let m = manifest(2, 5);
        let entry = Event::ready(&m, "thumbnails/a.jpg/manifest.json", None).entry("b", "s");
        let detail: serde_json::Value = serde_json::from_str(&entry.detail).unwrap();
        assert_eq!(detail["schema_version"], "1");
        assert_eq!(detail["manifest_key"], "thumbnails/a.jpg/manifest.json");
        assert_eq!(detail["renditions"][1]["content_type"], "image/webp");
        assert!(detail.get("truncated").is_none() && detail.get("failures").is_none());
        let refused = Event::refused(
            &ObjectRef {
                bucket: "in".into(),
                key: "uploads/b.jpg".into(),
                size: None,
                etag: None,
                version_id: None,
                sequencer: None,
            },
            &Failure::permanent("corrupt", "the file is damaged"),
            true,
        );
        let detail: serde_json::Value =
            serde_json::from_str(&refused.entry("b", "s").detail).unwrap();
        assert_eq!(detail["final"], true);
        assert_eq!(detail["kind"], "corrupt");
    }

    #[tokio::test]
    async fn entries_go_ten_to_a_call_and_partial_failures_are_per_entry() {
        let bus = Arc::new(MemoryBus::default());
        let publisher = Publisher::new(bus.clone(), "default", "thumbs");
        let m = manifest(1, 5);
        let mut events: Vec<Event> = (0..12)
            .map(|_| Event::ready(&m, "thumbnails/a.jpg/manifest.json", None))
            .collect();
        events[3] = Event::deleted(
            &Deleted {
                bucket: "in".into(),
                key: "uploads/a.jpg".into(),
                ..Default::default()
            },
            vec!["thumbnails/a.jpg/thumb.0123456789abcdef.webp".into()],
        );
        *bus.refuse.lock().unwrap() = Some(DELETED.into());
        let results = publisher.publish(&events).await;
        assert_eq!(bus.calls.load(std::sync::atomic::Ordering::Relaxed), 2);
        assert_eq!(results.len(), 12);
        assert!(results[3].is_err());
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 11);
    }
}
