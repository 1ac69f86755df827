//! Messages in, one outcome per message out: every record of every message is processed
//! (fetch -> render -> store), concurrently up to a limit, and no record's failure touches
//! another's. On Lambda a deadline bounds the batch: what cannot finish in time goes back.
//!
//! The story, one module per step: `message` takes a message apart into records, `record`
//! handles each record (admit, fetch, render, store, or delete its outputs), and `outcome`
//! settles what they came to into the message's one outcome. Under them, `isolate` runs each
//! piece of work as its own task, so a panic or the deadline costs only the task it hits.

mod isolate;
mod message;
mod outcome;
mod record;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tracing::{warn, Instrument};

use crate::config::PipelineConfig;
use crate::events::Publisher;
use crate::model::{Failure, Message, MessageOutcome};
use crate::storage::ObjectStore;
use crate::store::settings_fingerprint;
use isolate::{run_isolated, Interrupted};
use outcome::{Tally, NOT_STARTED};

/// How long before the deadline the batch stops waiting and hands back what is unfinished:
/// time for the dead letters, the copies sent again and the response.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(2);

/// The last instant at which an original may be started: `TIME_RESERVE_SECONDS` before the
/// deadline, but never more than half the time left at `now`, so that every timeout Lambda
/// allows (10 s and up) starts work instead of handing every message back.
pub fn start_by(now: Instant, deadline: Instant, reserve: Duration) -> Instant {
    let left = deadline.saturating_duration_since(now);
    deadline.checked_sub(reserve.min(left / 2)).unwrap_or(now)
}

/// How a received message is to be run (see [`Pipeline::triage`]).
#[derive(Debug)]
pub enum Triage {
    /// With the other messages in hand.
    Together,
    /// Alone: nothing else in hand while it runs.
    Alone,
    /// Not run: sent again (untried) or dead-lettered, as this outcome says.
    Settled(MessageOutcome),
}

/// The core both shells run: storage, settings and a concurrency limit.
pub struct Pipeline<S> {
    pub store: S,
    pub config: PipelineConfig,
    /// `store::settings_fingerprint` of the settings, computed once.
    fingerprint: String,
    limit: Arc<Semaphore>,
    /// Where settled uploads are announced (`EVENT_BUS`); `None`: no events.
    pub events: Option<Publisher>,
    /// libvips renders running (on blocking threads), by number, with their start.
    renders: Mutex<HashMap<u64, Instant>>,
    next_render: AtomicU64,
    /// Tests only: how long each render sleeps first (a hung libvips call), and the key
    /// whose record task panics.
    #[cfg(test)]
    pub(crate) slow_render: Mutex<Duration>,
    #[cfg(test)]
    pub(crate) panic_on: Mutex<Option<String>>,
}

/// A render running on a blocking thread; dropped when the thread is done with it, however
/// long after its task was given up.
pub(crate) struct RenderRunning<'p> {
    renders: &'p Mutex<HashMap<u64, Instant>>,
    id: u64,
}

impl Drop for RenderRunning<'_> {
    fn drop(&mut self) {
        self.renders.lock().expect("renders lock").remove(&self.id);
    }
}

impl<S: ObjectStore> Pipeline<S> {
    /// `concurrency`: how many originals are fetched and rendered at once.
    pub fn new(store: S, config: PipelineConfig, concurrency: usize) -> Arc<Self> {
        Self::with_events(store, config, concurrency, None)
    }

    /// [`Pipeline::new`], announcing settled uploads to `events`.
    pub fn with_events(
        store: S,
        config: PipelineConfig,
        concurrency: usize,
        events: Option<Publisher>,
    ) -> Arc<Self> {
        Arc::new(Pipeline {
            store,
            events,
            fingerprint: settings_fingerprint(&config.render),
            config,
            limit: Arc::new(Semaphore::new(concurrency.max(1))),
            renders: Mutex::new(HashMap::new()),
            next_render: AtomicU64::new(0),
            #[cfg(test)]
            slow_render: Mutex::default(),
            #[cfg(test)]
            panic_on: Mutex::default(),
        })
    }

    /// Count a render as running until the returned guard drops.
    pub(crate) fn render_running(&self) -> RenderRunning<'_> {
        let id = self.next_render.fetch_add(1, Ordering::Relaxed);
        self.renders
            .lock()
            .expect("renders lock")
            .insert(id, Instant::now());
        let running = RenderRunning {
            renders: &self.renders,
            id,
        };
        #[cfg(test)]
        std::thread::sleep(*self.slow_render.lock().unwrap());
        running
    }

    /// Renders still running after `limit`: a blocking libvips call cannot be stopped, so each
    /// one holds its concurrency permit until it returns.
    pub fn hung_renders(&self, limit: Duration) -> usize {
        let renders = self.renders.lock().expect("renders lock");
        renders.values().filter(|s| s.elapsed() >= limit).count()
    }

    /// Process a batch; outcomes come back in the order of `messages`. With a `deadline`, no
    /// original is started after [`start_by`], and messages still unfinished shortly before
    /// it are handed back for a retry.
    ///
    /// With `QUEUE_URL`, each message is triaged first ([`Pipeline::triage`]): a solo one is
    /// tried alone, after the others of its batch are finished.
    pub async fn process_batch(
        self: &Arc<Self>,
        messages: Vec<Message>,
        deadline: Option<Instant>,
    ) -> Vec<MessageOutcome> {
        let start = deadline.map(|d| start_by(Instant::now(), d, self.config.time_reserve));
        let cutoff = deadline.map(|d| d.checked_sub(DEADLINE_MARGIN).unwrap_or(d));
        let mut outcomes: Vec<Option<MessageOutcome>> = vec![None; messages.len()];
        let mut crowd = Vec::new();
        let mut alone = None;
        for (i, message) in messages.iter().enumerate() {
            match self.triage(message, alone.is_some()) {
                Triage::Together => crowd.push(i),
                Triage::Alone => alone = Some(i),
                Triage::Settled(outcome) => outcomes[i] = Some(outcome),
            }
        }
        for group in [crowd, alone.into_iter().collect()] {
            let chosen: Vec<&Message> = group.iter().map(|&i| &messages[i]).collect();
            for (i, outcome) in group.iter().zip(self.run(&chosen, start, cutoff).await) {
                outcomes[*i] = Some(outcome);
            }
        }
        outcomes
            .into_iter()
            .map(|o| o.expect("every message settled"))
            .collect()
    }

    /// How a received message is to be run. Without `QUEUE_URL` every message runs with the
    /// others. With it (what comes back is sent again as a copy, so a receive count above 1
    /// means the process holding the message ended without an answer: out of memory, its
    /// timeout, a killed worker), such a message is not tried but sent again marked solo,
    /// unblamed; a solo message runs alone (`alone_taken`: another one already does, so this
    /// one is sent again to wait for its turn); a solo message that comes back that way is the
    /// cause, and is dead-lettered as `crashed`.
    pub fn triage(&self, message: &Message, alone_taken: bool) -> Triage {
        if self.config.queue_url.is_none() {
            return Triage::Together;
        }
        let mut tally = Tally::new(message, self.config.max_receives, true);
        if message.receive_count > 1 && message.solo {
            warn!(id = %message.id, "a process that held only this message ended without an answer");
            tally.message_failed(Failure::permanent(
                "crashed",
                "the function or worker stopped without an answer (out of memory, its \
                 timeout, killed) while this upload was the only one it was working on",
            ));
        } else if message.receive_count > 1 || (message.solo && alone_taken) {
            tally.isolate();
        } else if message.solo {
            return Triage::Alone;
        } else {
            return Triage::Together;
        }
        Triage::Settled(tally.finish())
    }

    /// Run messages side by side until `cutoff`.
    async fn run(
        self: &Arc<Self>,
        messages: &[&Message],
        start_by: Option<Instant>,
        cutoff: Option<Instant>,
    ) -> Vec<MessageOutcome> {
        let started: Vec<Arc<AtomicBool>> = messages.iter().map(|_| Arc::default()).collect();
        let work = messages.iter().zip(&started).map(|(message, started)| {
            let pipeline = Arc::clone(self);
            let message = (*message).clone();
            let started = Arc::clone(started);
            let span = tracing::info_span!("message", id = %message.id);
            async move { pipeline.process_message(message, start_by, &started).await }
                .instrument(span)
        });
        let results = run_isolated(work, cutoff).await;
        messages
            .iter()
            .zip(results)
            .zip(started)
            .map(|((message, result), started)| match result {
                Ok(outcome) => outcome,
                Err(Interrupted::Panicked(why)) => {
                    warn!(id = %message.id, error = %why, "a message task panicked; it will be retried");
                    self.retry_whole(message, Failure::retryable("panic", why))
                }
                Err(Interrupted::Unfinished) if !started.load(Ordering::Relaxed) => {
                    warn!(id = %message.id, "not started before the deadline; handed back");
                    self.retry_whole(
                        message,
                        Failure::retryable(
                            NOT_STARTED,
                            "not started: too little of the function's time was left",
                        ),
                    )
                }
                Err(Interrupted::Unfinished) => {
                    warn!(id = %message.id, "not finished before the deadline; handed back");
                    self.retry_whole(
                        message,
                        Failure::retryable(
                            "deadline",
                            "not finished before the function's deadline",
                        ),
                    )
                }
            })
            .collect()
    }

    /// A message that goes back whole, or, on its last receive, to the dead-letter queue
    /// whole, with the reason.
    pub fn retry_whole(&self, message: &Message, failure: Failure) -> MessageOutcome {
        let mut tally = Tally::new(
            message,
            self.config.max_receives,
            self.config.queue_url.is_some(),
        );
        tally.message_failed(failure);
        tally.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Env;
    use crate::events::MemoryBus;
    use crate::model::Manifest;
    use crate::report::{deliver, settle, MemoryDeadLetters, MemoryRequeue};
    use crate::storage::{MemoryStore, PutObject, StorageError};
    use serde_json::{json, Value};

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn pipeline_with(vars: &[(&str, &str)]) -> Arc<Pipeline<MemoryStore>> {
        let mut pairs = vec![("OUTPUT_BUCKET", "out"), ("INPUT_BUCKETS", "in")];
        pairs.extend_from_slice(vars);
        let config = PipelineConfig::from_env(&Env::from_pairs(pairs)).unwrap();
        Pipeline::new(MemoryStore::default(), config, 2)
    }

    fn pipeline() -> Arc<Pipeline<MemoryStore>> {
        pipeline_with(&[])
    }

    /// One S3 record; `object` fields (eTag, sequencer...) are merged in.
    fn record(event: &str, bucket: &str, key: &str, object: Value) -> Value {
        let mut record =
            json!({"eventName": event, "s3": {"bucket": {"name": bucket}, "object": {"key": key}}});
        if let (Some(target), Value::Object(extra)) =
            (record["s3"]["object"].as_object_mut(), object)
        {
            target.extend(extra);
        }
        record
    }

    fn message_of(id: &str, records: Vec<Value>) -> Message {
        Message {
            id: id.into(),
            body: json!({ "Records": records }).to_string(),
            receive_count: 1,
            ..Default::default()
        }
    }

    /// An SQS message carrying an S3 notification for these (already encoded) keys.
    fn message(id: &str, keys: &[&str]) -> Message {
        let records = keys
            .iter()
            .map(|k| record("ObjectCreated:Put", "in", k, json!({})))
            .collect();
        message_of(id, records)
    }

    /// The stored rendition of `preset` in `folder` (its name carries a content digest).
    fn rendition(p: &Pipeline<MemoryStore>, folder: &str, preset: &str) -> Option<PutObject> {
        let prefix = format!("{folder}{preset}.");
        let keys = p.store.keys("out");
        let key = keys.iter().find(|k| k.starts_with(&prefix))?;
        p.store.object("out", key)
    }

    fn manifest(p: &Pipeline<MemoryStore>, folder: &str) -> Option<Manifest> {
        let stored = p.store.object("out", &format!("{folder}manifest.json"))?;
        Some(serde_json::from_slice(&stored.body).unwrap())
    }

    #[tokio::test]
    async fn every_record_of_a_message_is_rendered() {
        let p = pipeline();
        p.store
            .insert("in", "uploads/a.jpg", fixture("landscape.jpg"));
        p.store
            .insert("in", "uploads/b c.png", fixture("alpha.png"));
        let outcomes = p
            .process_batch(
                vec![message("m1", &["uploads/a.jpg", "uploads/b+c.png"])],
                None,
            )
            .await;
        assert_eq!(outcomes[0].rendered, 2);
        assert!(outcomes[0].dead_letters.is_empty() && outcomes[0].retry.is_none());
        for folder in ["thumbnails/a.jpg/", "thumbnails/b c.png/"] {
            let manifest = manifest(&p, folder).expect("manifest written");
            assert_eq!(manifest.renditions.len(), 3);
            for listed in &manifest.renditions {
                assert!(
                    p.store.object("out", &listed.key).is_some(),
                    "{}",
                    listed.key
                );
            }
        }
        let thumb = rendition(&p, "thumbnails/a.jpg/", "thumb").unwrap();
        assert_eq!(thumb.content_type, "image/webp");
        assert_eq!(thumb.cache_control, "public, max-age=31536000, immutable");
        assert_eq!(thumb.metadata["source-key"], "uploads/a.jpg");
        let stored = p
            .store
            .object("out", "thumbnails/a.jpg/manifest.json")
            .unwrap();
        assert_eq!(stored.cache_control, "no-cache");
    }

    #[tokio::test]
    async fn one_bad_record_does_not_take_the_batch_down() {
        let p = pipeline();
        p.store
            .insert("in", "uploads/good.jpg", fixture("landscape.jpg"));
        p.store
            .insert("in", "uploads/bad.jpg", fixture("truncated.jpg"));
        let messages = vec![
            message("good", &["uploads/good.jpg"]),
            message("bad", &["uploads/bad.jpg"]),
            message("missing", &["uploads/nope.jpg"]),
            message("outside", &["elsewhere/x.jpg"]),
            Message {
                id: "junk".into(),
                body: "hello".into(),
                receive_count: 1,
                ..Default::default()
            },
        ];
        let outcomes = p.process_batch(messages, None).await;
        let kinds: Vec<Vec<&str>> = outcomes
            .iter()
            .map(|o| o.dead_letters.iter().map(|d| d.failure.kind).collect())
            .collect();
        assert_eq!(
            kinds,
            vec![
                vec![],
                vec!["corrupt"],
                vec!["not_found"],
                vec!["outside_prefix"],
                vec!["malformed_message"]
            ]
        );
        assert_eq!(outcomes[0].rendered, 1);
        let dlq = MemoryDeadLetters::default();
        let report = settle(outcomes, Some(&dlq)).await;
        assert_eq!(report.done, ["good", "bad", "missing", "outside", "junk"]);
        assert!(report.failed.is_empty());
        let letters = dlq.letters.lock().unwrap();
        assert_eq!(letters[0].key.as_deref(), Some("uploads/bad.jpg"));
        // The dead letter replays just the failed record.
        let replay: Value = serde_json::from_str(&letters[0].body).unwrap();
        assert_eq!(
            replay["Records"][0]["s3"]["object"]["key"],
            "uploads/bad.jpg"
        );
        assert_eq!(letters.len(), 4);
        assert_eq!(letters[3].body, "hello");
    }

    #[tokio::test]
    async fn records_from_buckets_not_configured_are_dead_lettered_unread() {
        let p = pipeline();
        p.store
            .insert("elsewhere", "uploads/a.jpg", fixture("landscape.jpg"));
        let m = message_of(
            "m",
            vec![record(
                "ObjectCreated:Put",
                "elsewhere",
                "uploads/a.jpg",
                json!({}),
            )],
        );
        let outcomes = p.process_batch(vec![m], None).await;
        assert_eq!(outcomes[0].dead_letters[0].failure.kind, "foreign_bucket");
        assert!(p.store.keys("out").is_empty());
    }

    #[tokio::test]
    async fn transient_storage_errors_hand_the_message_back() {
        let p = pipeline();
        p.store
            .insert("in", "uploads/a.jpg", fixture("landscape.jpg"));
        p.store
            .fail_next([StorageError::Transient("503 SlowDown".into())]);
        let outcomes = p
            .process_batch(vec![message("m", &["uploads/a.jpg"])], None)
            .await;
        assert_eq!(
            outcomes[0].retry.as_ref().map(|f| f.kind),
            Some("storage_unavailable")
        );
        let report = settle(outcomes, Some(&MemoryDeadLetters::default())).await;
        assert_eq!(report.failed, ["m"]);
        // The retry succeeds.
        let outcomes = p
            .process_batch(vec![message("m", &["uploads/a.jpg"])], None)
            .await;
        assert_eq!(outcomes[0].rendered, 1);
    }

    #[tokio::test]
    async fn retryable_failures_on_the_last_receive_are_dead_lettered_with_their_reason() {
        let p = pipeline();
        p.store
            .insert("in", "uploads/a.jpg", fixture("landscape.jpg"));
        p.store
            .fail_next([StorageError::AccessDenied("AccessDenied (HTTP 403)".into())]);
        let mut last = message("m", &["uploads/a.jpg"]);
        last.receive_count = 3;
        let outcomes = p.process_batch(vec![last], None).await;
        assert!(outcomes[0].retry.is_none());
        let letter = &outcomes[0].dead_letters[0];
        assert_eq!(letter.failure.kind, "access_denied");
        assert!(!letter.failure.retryable);
        assert!(
            letter.failure.message.contains("gave up after 3 receives"),
            "{}",
            letter.failure.message
        );
    }

    #[tokio::test]
    async fn a_permanent_failure_beside_a_retryable_one_is_dead_lettered_once() {
        let p = pipeline();
        p.store
            .insert("in", "uploads/a.jpg", fixture("landscape.jpg"));
        // `elsewhere/` fails before any storage call, so the injected 503 hits a.jpg.
        let mixed = || message("m", &["uploads/a.jpg", "elsewhere/x.jpg"]);
        p.store
            .fail_next([StorageError::Transient("503 SlowDown".into())]);
        let dlq = MemoryDeadLetters::default();
        let first = settle(p.process_batch(vec![mixed()], None).await, Some(&dlq)).await;
        assert_eq!(first.failed, ["m"]);
        assert!(dlq.letters.lock().unwrap().is_empty());
        let second = settle(p.process_batch(vec![mixed()], None).await, Some(&dlq)).await;
        assert_eq!(second.done, ["m"]);
        let letters = dlq.letters.lock().unwrap();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].failure.kind, "outside_prefix");
        assert!(rendition(&p, "thumbnails/a.jpg/", "thumb").is_some());
    }

    #[tokio::test]
    async fn permanent_failures_are_handed_back_when_the_dlq_cannot_take_them() {
        let p = pipeline();
        let outcomes = p
            .process_batch(vec![message("m", &["uploads/missing.jpg"])], None)
            .await;
        let no_dlq: Option<&MemoryDeadLetters> = None;
        assert_eq!(settle(outcomes.clone(), no_dlq).await.failed, ["m"]);
        let broken = MemoryDeadLetters::default();
        broken
            .unavailable
            .store(true, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(settle(outcomes, Some(&broken)).await.failed, ["m"]);
    }

    #[tokio::test]
    async fn test_events_removals_and_folder_markers_are_acknowledged_without_work() {
        let p = pipeline();
        let test_event = Message {
            id: "t".into(),
            body: json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "in"})
                .to_string(),
            receive_count: 1,
            ..Default::default()
        };
        let removal = message_of(
            "r",
            vec![record("ObjectRemoved:Delete", "in", "uploads/x", json!({}))],
        );
        p.store.insert("in", "uploads/folder/", vec![]);
        let folder = message("f", &["uploads/folder/"]);
        let outcomes = p
            .process_batch(vec![test_event, removal, folder], None)
            .await;
        assert!(outcomes
            .iter()
            .all(|o| o.skipped == 1 && o.dead_letters.is_empty() && o.retry.is_none()));
        assert!(p.store.keys("out").is_empty());
    }

    #[tokio::test]
    async fn a_duplicate_delivery_is_acknowledged_without_rendering() {
        let p = pipeline();
        p.store
            .insert("in", "uploads/a.jpg", fixture("landscape.jpg"));
        let first = p
            .process_batch(vec![message("m", &["uploads/a.jpg"])], None)
            .await;
        assert_eq!(first[0].rendered, 1);
        let writes = p.store.puts.lock().unwrap().len();
        let second = p
            .process_batch(vec![message("m", &["uploads/a.jpg"])], None)
            .await;
        assert_eq!((second[0].rendered, second[0].skipped), (0, 1));
        assert_eq!(p.store.puts.lock().unwrap().len(), writes);
    }

    #[tokio::test]
    async fn changed_settings_render_again() {
        let p = pipeline();
        p.store
            .insert("in", "uploads/a.jpg", fixture("landscape.jpg"));
        p.process_batch(vec![message("m", &["uploads/a.jpg"])], None)
            .await;
        let q = Pipeline::new(
            MemoryStore::default(),
            PipelineConfig::from_env(&Env::from_pairs([
                ("OUTPUT_BUCKET", "out"),
                ("INPUT_BUCKETS", "in"),
                ("THUMBS_PRESETS", "thumb=100x100:cover"),
            ]))
            .unwrap(),
            1,
        );
        q.store
            .insert("in", "uploads/a.jpg", fixture("landscape.jpg"));
        let old = p
            .store
            .object("out", "thumbnails/a.jpg/manifest.json")
            .unwrap();
        q.store
            .insert("out", "thumbnails/a.jpg/manifest.json", old.body);
        let outcomes = q
            .process_batch(vec![message("m", &["uploads/a.jpg"])], None)
            .await;
        assert_eq!(outcomes[0].rendered, 1);
        assert_eq!(
            manifest(&q, "thumbnails/a.jpg/").unwrap().renditions.len(),
            1
        );
    }

    #[tokio::test]
    async fn a_reupload_gets_new_names_and_the_replaced_renditions_are_removed() {
        let p = pipeline();
        p.store
            .insert("in", "uploads/a.jpg", fixture("landscape.jpg"));
        p.process_batch(vec![message("m1", &["uploads/a.jpg"])], None)
            .await;
        let before = manifest(&p, "thumbnails/a.jpg/").unwrap();
        p.store.insert("in", "uploads/a.jpg", fixture("grey.jpg"));
        let outcomes = p
            .process_batch(vec![message("m2", &["uploads/a.jpg"])], None)
            .await;
        assert_eq!(outcomes[0].rendered, 1);
        let after = manifest(&p, "thumbnails/a.jpg/").unwrap();
        for (old, new) in before.renditions.iter().zip(&after.renditions) {
            assert_ne!(
                old.key, new.key,
                "a cached URL must never show other content"
            );
            assert!(
                p.store.object("out", &old.key).is_none(),
                "{} left behind",
                old.key
            );
            assert!(p.store.object("out", &new.key).is_some());
        }
    }

    #[tokio::test]
    async fn an_overwritten_upload_is_not_rendered_for_its_old_event() {
        let p = pipeline();
        let old = fixture("landscape.jpg");
        let new = fixture("grey.jpg");
        p.store.insert("in", "uploads/a.jpg", new.clone());
        // The event announced the old bytes; the key holds the new ones now.
        let late = message_of(
            "old",
            vec![record(
                "ObjectCreated:Put",
                "in",
                "uploads/a.jpg",
                json!({"eTag": MemoryStore::etag_of(&old)}),
            )],
        );
        let outcomes = p.process_batch(vec![late], None).await;
        assert_eq!((outcomes[0].rendered, outcomes[0].skipped), (0, 1));
        assert!(p.store.keys("out").is_empty());
        let current = message_of(
            "new",
            vec![record(
                "ObjectCreated:Put",
                "in",
                "uploads/a.jpg",
                json!({"eTag": MemoryStore::etag_of(&new)}),
            )],
        );
        assert_eq!(p.process_batch(vec![current], None).await[0].rendered, 1);
    }

    #[tokio::test]
    async fn an_older_event_never_replaces_a_newer_uploads_manifest() {
        let p = pipeline();
        p.store
            .insert("in", "uploads/a.jpg", fixture("landscape.jpg"));
        let event = |id: &str, sequencer: &str| {
            message_of(
                id,
                vec![record(
                    "ObjectCreated:Put",
                    "in",
                    "uploads/a.jpg",
                    json!({"sequencer": sequencer}),
                )],
            )
        };
        p.process_batch(vec![event("new", "0055AED6DCD90281E7")], None)
            .await;
        let writes = p.store.puts.lock().unwrap().len();
        let late = p
            .process_batch(vec![event("old", "0055AED6DCD90281E5")], None)
            .await;
        assert_eq!((late[0].rendered, late[0].skipped), (0, 1));
        assert_eq!(p.store.puts.lock().unwrap().len(), writes);
        let manifest = manifest(&p, "thumbnails/a.jpg/").unwrap();
        assert_eq!(
            manifest.source.sequencer.as_deref(),
            Some("0055AED6DCD90281E7")
        );
    }

    #[tokio::test]
    async fn deletions_remove_outputs_only_once_the_key_holds_nothing() {
        let p = pipeline_with(&[("SYNC_DELETES", "true")]);
        p.store
            .insert("in", "uploads/a.jpg", fixture("landscape.jpg"));
        let at = |event: &str, sequencer: &str| {
            message_of(
                sequencer,
                vec![record(
                    event,
                    "in",
                    "uploads/a.jpg",
                    json!({"sequencer": sequencer}),
                )],
            )
        };
        p.process_batch(vec![at("ObjectCreated:Put", "0055AED6DCD90281E7")], None)
            .await;
        // A delete that happened before this upload arrives late: the outputs stay.
        p.process_batch(vec![at("ObjectRemoved:Delete", "0055AED6DCD90281E5")], None)
            .await;
        assert_eq!(p.store.keys("out").len(), 4);
        // A later one while the key still holds the upload (a noncurrent version was
        // deleted): the sequencer alone never deletes live outputs.
        p.process_batch(vec![at("ObjectRemoved:Delete", "0055AED6DCD90281E9")], None)
            .await;
        assert_eq!(p.store.keys("out").len(), 4);
        p.store.delete("in", "uploads/a.jpg").await.unwrap();
        let outcomes = p
            .process_batch(vec![at("ObjectRemoved:Delete", "0055AED6DCD90281EA")], None)
            .await;
        assert!(outcomes[0].dead_letters.is_empty() && outcomes[0].retry.is_none());
        // Only the tombstone is left.
        assert_eq!(p.store.keys("out"), ["thumbnails/a.jpg/manifest.json"]);
    }

    #[tokio::test]
    async fn without_distinct_sequencers_a_deletion_asks_whether_the_key_was_uploaded_again() {
        let p = pipeline_with(&[("SYNC_DELETES", "true")]);
        p.store
            .insert("in", "uploads/a.jpg", fixture("landscape.jpg"));
        let at = |event: &str| {
            message_of(
                "m",
                vec![record(
                    event,
                    "in",
                    "uploads/a.jpg",
                    json!({"sequencer": "0"}),
                )],
            )
        };
        p.process_batch(vec![at("ObjectCreated:Put")], None).await;
        // The key holds an upload: this deletion is older than it.
        p.process_batch(vec![at("ObjectRemoved:Delete")], None)
            .await;
        assert_eq!(p.store.keys("out").len(), 4);
        p.store.delete("in", "uploads/a.jpg").await.unwrap();
        p.process_batch(vec![at("ObjectRemoved:Delete")], None)
            .await;
        assert_eq!(p.store.keys("out"), ["thumbnails/a.jpg/manifest.json"]);
    }

    #[tokio::test]
    async fn keys_too_long_for_their_outputs_fail_before_anything_is_written() {
        let p = pipeline();
        let long = format!("uploads/{}.jpg", "k".repeat(1005));
        p.store.insert("in", &long, fixture("landscape.jpg"));
        let outcomes = p.process_batch(vec![message("m", &[&long])], None).await;
        assert_eq!(outcomes[0].dead_letters[0].failure.kind, "key_too_long");
        assert!(p.store.keys("out").is_empty());
        // A key whose percent-encoded form passes S3's 2 KB of metadata still renders.
        let cjk = format!("uploads/{}.jpg", "写".repeat(230));
        p.store.insert("in", &cjk, fixture("landscape.jpg"));
        let encoded = utf8_encode(&cjk);
        let outcomes = p.process_batch(vec![message("m", &[&encoded])], None).await;
        assert_eq!(outcomes[0].rendered, 1, "{:?}", outcomes[0].dead_letters);
    }

    fn utf8_encode(key: &str) -> String {
        percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC).to_string()
    }

    #[tokio::test]
    async fn every_allowed_function_timeout_starts_work() {
        // FunctionTimeout allows 10 and 15 s; TIME_RESERVE_SECONDS defaults to 10.
        for seconds in [10, 15] {
            let p = pipeline();
            p.store
                .insert("in", "uploads/a.jpg", fixture("landscape.jpg"));
            let deadline = Instant::now() + Duration::from_secs(seconds);
            let outcomes = p
                .process_batch(vec![message("m", &["uploads/a.jpg"])], Some(deadline))
                .await;
            assert_eq!(
                outcomes[0].rendered, 1,
                "{seconds} s: {:?}",
                outcomes[0].retry
            );
        }
    }

    #[test]
    fn the_reserve_is_at_most_half_the_time_left() {
        let now = Instant::now();
        let left = |timeout, reserve| {
            start_by(
                now,
                now + Duration::from_secs(timeout),
                Duration::from_secs(reserve),
            ) - now
        };
        assert_eq!(left(60, 10), Duration::from_secs(50));
        assert_eq!(left(10, 10), Duration::from_secs(5));
        assert_eq!(left(15, 0), Duration::from_secs(15));
    }

    fn pipeline_of(vars: &[(&str, &str)], concurrency: usize) -> Arc<Pipeline<MemoryStore>> {
        let mut pairs = vec![("OUTPUT_BUCKET", "out"), ("INPUT_BUCKETS", "in")];
        pairs.extend_from_slice(vars);
        let config = PipelineConfig::from_env(&Env::from_pairs(pairs)).unwrap();
        Pipeline::new(MemoryStore::default(), config, concurrency)
    }

    const QUEUE: (&str, &str) = ("QUEUE_URL", "https://sqs/main");

    #[tokio::test]
    async fn a_message_not_started_for_lack_of_time_is_a_hand_back_not_an_attempt() {
        let p = pipeline_of(&[QUEUE], 1);
        p.store
            .insert("in", "uploads/a.jpg", fixture("landscape.jpg"));
        p.store
            .insert("in", "uploads/b.jpg", fixture("landscape.jpg"));
        // One slot and slow storage: `first` holds the slot past the last start.
        *p.store.latency.lock().unwrap() = Duration::from_secs(3);
        let deadline = Instant::now() + Duration::from_secs(4);
        let outcomes = p
            .process_batch(
                vec![
                    message("first", &["uploads/a.jpg"]),
                    message("second", &["uploads/b.jpg"]),
                ],
                Some(deadline),
            )
            .await;
        assert_eq!(outcomes[0].retry.as_ref().map(|f| f.kind), Some("deadline"));
        assert_eq!(
            outcomes[1].retry.as_ref().map(|f| f.kind),
            Some("not_started")
        );
        let resend = |i: usize| outcomes[i].resend.clone().unwrap();
        assert_eq!((resend(0).attempts, resend(0).delay_seconds), (1, 30));
        assert_eq!((resend(1).attempts, resend(1).delay_seconds), (0, 0));
    }

    /// Feed a copy sent again back in, as SQS would deliver it: a new message.
    fn delivered(id: &str, copy: &crate::model::Resend) -> Message {
        Message {
            id: id.into(),
            body: copy.body.clone(),
            receive_count: 1,
            attempts: copy.attempts,
            solo: copy.solo,
        }
    }

    #[tokio::test]
    async fn hand_backs_for_lack_of_time_never_use_up_attempts() {
        let p = pipeline_with(&[QUEUE]);
        p.store
            .insert("in", "uploads/a.jpg", fixture("landscape.jpg"));
        let dlq = MemoryDeadLetters::default();
        let requeue = MemoryRequeue::default();
        let mut m = message("m0", &["uploads/a.jpg"]);
        // Five invocations in a row with no time left for it.
        for round in 1..=5 {
            let outcomes = p.process_batch(vec![m], Some(Instant::now())).await;
            let report = deliver(outcomes, Some(&dlq), Some(&requeue), None, None).await;
            assert_eq!(report.done.len(), 1, "the copy was sent: acknowledged");
            let copy = requeue.copies.lock().unwrap().pop().expect("a copy");
            assert_eq!(copy.attempts, 0, "round {round}");
            m = delivered(&format!("m{round}"), &copy);
        }
        assert!(dlq.letters.lock().unwrap().is_empty());
        assert_eq!(p.process_batch(vec![m], None).await[0].rendered, 1);
    }

    #[tokio::test]
    async fn attempts_carried_by_copies_end_in_a_dead_letter_with_the_reason() {
        let p = pipeline_with(&[QUEUE]);
        p.store
            .insert("in", "uploads/a.jpg", fixture("landscape.jpg"));
        let requeue = MemoryRequeue::default();
        let dlq = MemoryDeadLetters::default();
        let mut m = message("m0", &["uploads/a.jpg"]);
        for round in 1..=3 {
            p.store
                .fail_next([StorageError::Transient("503 SlowDown".into())]);
            let outcomes = p.process_batch(vec![m.clone()], None).await;
            deliver(outcomes, Some(&dlq), Some(&requeue), None, None).await;
            match requeue.copies.lock().unwrap().pop() {
                Some(copy) => m = delivered(&format!("m{round}"), &copy),
                None => assert_eq!(round, 3),
            }
        }
        let letters = dlq.letters.lock().unwrap();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].failure.kind, "storage_unavailable");
        assert!(letters[0].failure.message.contains("gave up after 3"));
    }

    #[tokio::test]
    async fn a_crash_is_blamed_only_on_the_message_that_causes_it() {
        let p = pipeline_with(&[QUEUE]);
        for key in ["a", "b", "c"] {
            p.store.insert(
                "in",
                &format!("uploads/{key}.jpg"),
                fixture("landscape.jpg"),
            );
        }
        // An invocation that held a and b ended without an answer: both come back with a
        // receive count of 2, and are sent again to be tried alone, untried and unblamed.
        let mut crashed = vec![
            message("a", &["uploads/a.jpg"]),
            message("b", &["uploads/b.jpg"]),
        ];
        crashed.iter_mut().for_each(|m| m.receive_count = 2);
        let outcomes = p.process_batch(crashed, None).await;
        for o in &outcomes {
            let copy = o.resend.as_ref().unwrap();
            assert!(copy.solo && copy.attempts == 0 && o.rendered == 0);
            assert!(o.dead_letters.is_empty());
        }
        // Their copies arrive with another message: it is rendered, one copy is tried alone
        // after it, the other waits for an invocation of its own.
        let copies: Vec<Message> = outcomes
            .iter()
            .map(|o| delivered(&o.message_id, o.resend.as_ref().unwrap()))
            .collect();
        let batch = vec![
            copies[0].clone(),
            copies[1].clone(),
            message("c", &["uploads/c.jpg"]),
        ];
        let outcomes = p.process_batch(batch, None).await;
        assert_eq!(outcomes[0].rendered, 1);
        assert!(outcomes[1].resend.as_ref().is_some_and(|c| c.solo));
        assert_eq!(outcomes[1].rendered, 0);
        assert_eq!(outcomes[2].rendered, 1);
        // A copy that was the only one tried comes back the same way: it is the cause.
        let mut alone = copies[1].clone();
        alone.receive_count = 2;
        let outcomes = p.process_batch(vec![alone], None).await;
        assert!(outcomes[0].retry.is_none());
        let letter = &outcomes[0].dead_letters[0];
        assert_eq!(letter.failure.kind, "crashed");
        assert!(letter.failure.message.contains("out of memory"));
    }

    #[tokio::test]
    async fn a_panicking_record_on_its_last_receive_is_dead_lettered_with_its_reason() {
        let p = pipeline();
        p.store
            .insert("in", "uploads/a.jpg", fixture("landscape.jpg"));
        *p.panic_on.lock().unwrap() = Some("uploads/a.jpg".into());
        let mut m = message("m", &["uploads/a.jpg"]);
        let outcomes = p.process_batch(vec![m.clone()], None).await;
        assert_eq!(outcomes[0].retry.as_ref().map(|f| f.kind), Some("panic"));
        m.receive_count = 3;
        let outcomes = p.process_batch(vec![m], None).await;
        assert!(outcomes[0].retry.is_none(), "{:?}", outcomes[0].retry);
        let letter = &outcomes[0].dead_letters[0];
        assert_eq!(letter.failure.kind, "panic");
        assert_eq!(letter.key.as_deref(), Some("uploads/a.jpg"));
    }

    #[tokio::test]
    async fn a_render_past_the_deadline_keeps_its_slot_until_it_ends() {
        let p = pipeline_of(&[("TIME_RESERVE_SECONDS", "0")], 1);
        p.store
            .insert("in", "uploads/a.jpg", fixture("landscape.jpg"));
        *p.slow_render.lock().unwrap() = Duration::from_millis(2500);
        let deadline = Instant::now() + DEADLINE_MARGIN + Duration::from_millis(500);
        let outcomes = p
            .process_batch(vec![message("m", &["uploads/a.jpg"])], Some(deadline))
            .await;
        assert_eq!(outcomes[0].retry.as_ref().map(|f| f.kind), Some("deadline"));
        // The task was stopped, the render goes on: its slot is not free for another.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(p.limit.available_permits(), 0, "the slot was given up");
        assert_eq!(p.hung_renders(Duration::ZERO), 1);
        tokio::time::sleep(Duration::from_millis(3000)).await;
        assert_eq!(p.limit.available_permits(), 1);
        assert_eq!(p.hung_renders(Duration::ZERO), 0);
    }

    #[tokio::test]
    async fn a_batch_that_cannot_finish_in_the_deadline_returns_the_unfinished_items() {
        let p = pipeline_with(&[("TIME_RESERVE_SECONDS", "0")]);
        p.store
            .insert("in", "uploads/a.jpg", fixture("landscape.jpg"));
        *p.store.latency.lock().unwrap() = Duration::from_secs(30);
        let started = Instant::now();
        let deadline = started + DEADLINE_MARGIN + Duration::from_millis(500);
        let outcomes = p
            .process_batch(
                vec![message("slow", &["uploads/a.jpg"]), message("test", &[])],
                Some(deadline),
            )
            .await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "waited past the deadline"
        );
        assert_eq!(outcomes[0].retry.as_ref().map(|f| f.kind), Some("deadline"));
        assert!(
            outcomes[1].retry.is_none(),
            "a finished message is not handed back"
        );
        let report = settle(outcomes, Some(&MemoryDeadLetters::default())).await;
        assert_eq!(report.failed, ["slow"]);
    }

    #[tokio::test]
    async fn a_panicking_task_loses_no_other_and_is_reported() {
        let work: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = u8> + Send>>> = vec![
            Box::pin(async { 1 }),
            Box::pin(async { panic!("boom") }),
            Box::pin(async { 3 }),
        ];
        let results = run_isolated(work, None).await;
        assert_eq!(results[0], Ok(1));
        assert!(matches!(&results[1], Err(Interrupted::Panicked(why)) if why.contains("panic")));
        assert_eq!(results[2], Ok(3));
    }

    /// `backfill --only-missing` asks `outputs::is_done` for each original listed.
    async fn backfill_would_skip(p: &Pipeline<MemoryStore>, key: &str, etag: &str) -> bool {
        crate::outputs::is_done(&p.store, &p.config, "in", key, Some(etag), &p.fingerprint)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_first_upload_that_fails_for_good_is_not_backfilled_again_until_it_changes() {
        for (bad, vars, kind) in [
            ("truncated.jpg", &[][..], "corrupt"),
            (
                "landscape.jpg",
                &[("MAX_INPUT_BYTES", "1000")][..],
                "too_large",
            ),
        ] {
            let p = pipeline_with(vars);
            let key = "uploads/bad.jpg";
            let etag = MemoryStore::etag_of(&fixture(bad));
            p.store.insert("in", key, fixture(bad));
            let event = |etag: &str| {
                message_of(
                    "m",
                    vec![record(
                        "ObjectCreated:Put",
                        "in",
                        key,
                        json!({ "eTag": etag }),
                    )],
                )
            };
            let first = p.process_batch(vec![event(&etag)], None).await.remove(0);
            assert_eq!(first.dead_letters.len(), 1, "{kind}");
            assert_eq!(first.dead_letters[0].failure.kind, kind);
            assert!(
                backfill_would_skip(&p, key, &etag).await,
                "{kind}: backfill --only-missing would enqueue it (and dead-letter it) again"
            );
            let m = manifest(&p, "thumbnails/bad.jpg/").unwrap();
            assert!(m.renditions.is_empty() && m.failures[0].kind == kind);
            // A redrive of its letter tries again (never `unchanged`), and fails again.
            let redriven = p.process_batch(vec![event(&etag)], None).await.remove(0);
            assert_eq!((redriven.skipped, redriven.dead_letters.len()), (0, 1));
            // A new upload of the key is a new ETag: listed as missing, and rendered (a
            // picture under both limits).
            let good = fixture("cmyk-patches.jpg");
            let fixed = MemoryStore::etag_of(&good);
            p.store.insert("in", key, good);
            assert!(!backfill_would_skip(&p, key, &fixed).await);
            let rendered = p.process_batch(vec![event(&fixed)], None).await.remove(0);
            assert_eq!(rendered.rendered, 1, "{kind}: {rendered:?}");
            let m = manifest(&p, "thumbnails/bad.jpg/").unwrap();
            assert!(m.failures.is_empty() && m.renditions.len() == 3);
            assert!(backfill_would_skip(&p, key, &fixed).await);
        }
    }

    /// A pipeline publishing to a bus in memory, with `vars`.
    fn announcing(vars: &[(&str, &str)]) -> (Arc<Pipeline<MemoryStore>>, Arc<MemoryBus>) {
        let mut pairs = vec![("OUTPUT_BUCKET", "out"), ("INPUT_BUCKETS", "in")];
        pairs.extend_from_slice(vars);
        let config = PipelineConfig::from_env(&Env::from_pairs(pairs)).unwrap();
        let bus = Arc::new(MemoryBus::default());
        let events = Publisher::new(bus.clone(), "default", "thumbs");
        let p = Pipeline::with_events(MemoryStore::default(), config, 2, Some(events));
        (p, bus)
    }

    /// Settle `outcomes` as the shells do, dead letters to `dlq` and events to `p`'s bus.
    async fn settle_announcing(
        p: &Pipeline<MemoryStore>,
        outcomes: Vec<MessageOutcome>,
        dlq: &MemoryDeadLetters,
    ) -> crate::report::Report {
        deliver(
            outcomes,
            Some(dlq),
            None::<&MemoryRequeue>,
            p.events.as_ref(),
            None,
        )
        .await
    }

    fn upload(id: &str, key: &str, etag: &str, sequencer: &str) -> Message {
        message_of(
            id,
            vec![record(
                "ObjectCreated:Put",
                "in",
                key,
                json!({ "eTag": etag, "sequencer": sequencer }),
            )],
        )
    }

    #[tokio::test]
    async fn a_rendered_upload_is_announced_once_with_what_its_manifest_lists() {
        let (p, bus) = announcing(&[]);
        let bytes = fixture("landscape.jpg");
        let etag = MemoryStore::etag_of(&bytes);
        p.store.insert("in", "uploads/a.jpg", bytes);
        let outcomes = p
            .process_batch(vec![upload("m", "uploads/a.jpg", &etag, "0A")], None)
            .await;
        assert_eq!(outcomes[0].rendered, 1);
        let details = bus.details();
        assert_eq!(details.len(), 1);
        let (kind, detail) = &details[0];
        assert_eq!(kind, crate::events::READY);
        let m = manifest(&p, "thumbnails/a.jpg/").unwrap();
        assert_eq!(detail["manifest_key"], "thumbnails/a.jpg/manifest.json");
        assert_eq!(detail["etag"], etag.as_str());
        assert_eq!(detail["sequencer"], "0A");
        assert_eq!(detail["settings"], m.settings.as_str());
        assert_eq!(detail["placeholder"], m.placeholder.as_str());
        assert_eq!(
            detail["renditions"],
            serde_json::to_value(&m.renditions).unwrap()
        );
    }

    #[tokio::test]
    async fn a_failed_publish_is_retried_and_the_unchanged_retry_announces_with_the_same_id() {
        let (p, bus) = announcing(&[]);
        let bytes = fixture("landscape.jpg");
        let etag = MemoryStore::etag_of(&bytes);
        p.store.insert("in", "uploads/a.jpg", bytes);
        let m = upload("m", "uploads/a.jpg", &etag, "0A");
        bus.outage.store(true, Ordering::Relaxed);
        let first = p.process_batch(vec![m.clone()], None).await.remove(0);
        let retry = first.retry.expect("retried, not acknowledged");
        assert_eq!(retry.kind, crate::events::NOT_PUBLISHED);
        assert!(
            manifest(&p, "thumbnails/a.jpg/").is_some(),
            "the outcome is stored"
        );
        assert!(bus.details().is_empty());
        bus.outage.store(false, Ordering::Relaxed);
        let again = p
            .process_batch(
                vec![Message {
                    receive_count: 2,
                    ..m.clone()
                }],
                None,
            )
            .await
            .remove(0);
        assert_eq!(
            (again.rendered, again.skipped),
            (0, 1),
            "unchanged: {again:?}"
        );
        assert!(again.retry.is_none() && again.dead_letters.is_empty());
        // A duplicate S3 delivery announces again, with the same id.
        p.process_batch(vec![m], None).await;
        let details = bus.details();
        assert_eq!(details.len(), 2);
        assert_eq!(details[0].1["outcome_id"], details[1].1["outcome_id"]);
        assert_eq!(details[0].1, details[1].1);
        // A new upload of the key is a new outcome.
        let other = fixture("alpha.png");
        let etag2 = MemoryStore::etag_of(&other);
        p.store.insert("in", "uploads/a.jpg", other);
        p.process_batch(vec![upload("n", "uploads/a.jpg", &etag2, "0B")], None)
            .await;
        let details = bus.details();
        assert_ne!(details[2].1["outcome_id"], details[0].1["outcome_id"]);
    }

    #[tokio::test]
    async fn a_publish_failing_on_every_receive_ends_in_a_dead_letter_not_a_refusal() {
        let (p, bus) = announcing(&[]);
        p.store
            .insert("in", "uploads/a.jpg", fixture("landscape.jpg"));
        bus.outage.store(true, Ordering::Relaxed);
        let last = Message {
            receive_count: 3,
            ..message("m", &["uploads/a.jpg"])
        };
        let outcomes = p.process_batch(vec![last], None).await;
        assert_eq!(
            outcomes[0].dead_letters[0].failure.kind,
            crate::events::NOT_PUBLISHED
        );
        bus.outage.store(false, Ordering::Relaxed);
        let dlq = MemoryDeadLetters::default();
        let report = settle_announcing(&p, outcomes, &dlq).await;
        assert_eq!(report.done, ["m"]);
        // Its outcome is thumbnails: a redrive announces them, no `Upload Refused` does.
        assert!(bus.details().is_empty());
    }

    #[tokio::test]
    async fn a_refusal_is_announced_after_its_dead_letter_with_the_same_reason() {
        let (p, bus) = announcing(&[]);
        let bad = fixture("truncated.jpg");
        let etag = MemoryStore::etag_of(&bad);
        p.store.insert("in", "uploads/bad.jpg", bad);
        p.store
            .insert("in", "uploads/good.jpg", fixture("landscape.jpg"));
        let messages = vec![
            upload("bad", "uploads/bad.jpg", &etag, "0C"),
            message("good", &["uploads/good.jpg"]),
        ];
        let outcomes = p.process_batch(messages.clone(), None).await;
        let dlq = MemoryDeadLetters::default();
        // The dead-letter queue is down: no letter, so no event yet; the message comes back.
        dlq.unavailable.store(true, Ordering::Relaxed);
        let report = settle_announcing(&p, outcomes, &dlq).await;
        assert_eq!(report.failed, ["bad"]);
        assert_eq!(bus.details().len(), 1, "only the good upload's Ready");
        dlq.unavailable.store(false, Ordering::Relaxed);
        // Its letter is sent but its event fails: handed back, and sent again on the retry.
        *bus.refuse_type.lock().unwrap() = Some(crate::events::REFUSED.into());
        let outcomes = p.process_batch(vec![messages[0].clone()], None).await;
        let report = settle_announcing(&p, outcomes, &dlq).await;
        assert_eq!(report.failed, ["bad"]);
        *bus.refuse_type.lock().unwrap() = None;
        let outcomes = p.process_batch(vec![messages[0].clone()], None).await;
        let report = settle_announcing(&p, outcomes, &dlq).await;
        assert_eq!(report.done, ["bad"]);
        let letters = dlq.letters.lock().unwrap();
        assert_eq!(
            letters.len(),
            2,
            "the letter twice (one LetterId), then its event"
        );
        let refused: Vec<_> = bus
            .details()
            .into_iter()
            .filter(|(t, _)| t == crate::events::REFUSED)
            .collect();
        assert_eq!(refused.len(), 1);
        let detail = &refused[0].1;
        assert_eq!(detail["reason"], letters[1].failure.message.as_str());
        assert_eq!(detail["kind"], "corrupt");
        assert_eq!(detail["final"], true);
        assert_eq!(
            (detail["key"].as_str(), detail["etag"].as_str()),
            (Some("uploads/bad.jpg"), Some(etag.as_str()))
        );
    }

    #[tokio::test]
    async fn a_shortage_that_ran_out_of_receives_is_announced_as_not_final() {
        let (p, bus) = announcing(&[]);
        p.store
            .insert("in", "uploads/a.jpg", fixture("landscape.jpg"));
        p.store
            .fail_next([StorageError::Transient("503 SlowDown".into())]);
        let last = Message {
            receive_count: 3,
            ..message("m", &["uploads/a.jpg"])
        };
        let outcomes = p.process_batch(vec![last], None).await;
        let dlq = MemoryDeadLetters::default();
        settle_announcing(&p, outcomes, &dlq).await;
        let details = bus.details();
        assert_eq!(details.len(), 1);
        assert_eq!(details[0].1["kind"], "storage_unavailable");
        assert_eq!(details[0].1["final"], false);
    }

    #[tokio::test]
    async fn a_synced_deletion_announces_the_renditions_it_removed_also_on_its_retry() {
        let (p, bus) = announcing(&[("SYNC_DELETES", "true")]);
        p.store
            .insert("in", "uploads/a.jpg", fixture("landscape.jpg"));
        p.process_batch(vec![message("m", &["uploads/a.jpg"])], None)
            .await;
        let listed: Vec<String> = manifest(&p, "thumbnails/a.jpg/")
            .unwrap()
            .renditions
            .into_iter()
            .map(|r| r.key)
            .collect();
        p.store.delete("in", "uploads/a.jpg").await.unwrap();
        let removed = message_of(
            "d",
            vec![record(
                "ObjectRemoved:Delete",
                "in",
                "uploads/a.jpg",
                json!({"sequencer": "0F"}),
            )],
        );
        bus.outage.store(true, Ordering::Relaxed);
        let first = p.process_batch(vec![removed.clone()], None).await.remove(0);
        assert_eq!(
            first.retry.expect("retried").kind,
            crate::events::NOT_PUBLISHED
        );
        assert_eq!(p.store.keys("out"), ["thumbnails/a.jpg/manifest.json"]);
        bus.outage.store(false, Ordering::Relaxed);
        let again = p.process_batch(vec![removed], None).await.remove(0);
        assert!(again.retry.is_none() && again.dead_letters.is_empty());
        let details = bus.details();
        assert_eq!(details.len(), 2, "Ready, then Deleted");
        assert_eq!(details[1].0, crate::events::DELETED);
        assert_eq!(details[1].1["renditions"], json!(listed));
        assert_eq!(details[1].1["sequencer"], "0F");
    }
}
