//! Messages in, one outcome per message out: every record of every message is processed
//! (fetch -> render -> store), concurrently up to a limit, and no record's failure touches
//! another's.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{info, warn, Instrument};

use crate::config::PipelineConfig;
use crate::error::Failure;
use crate::fetch::fetch;
use crate::notification::{self, Notification, ObjectRef, Record};
use crate::render;
use crate::storage::ObjectStore;
use crate::store::store;
use crate::telemetry;

/// An SQS message, as both shells see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: String,
    pub body: String,
}

/// A permanent failure to send to the dead-letter queue: a body a redrive can replay, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// `{"Records":[<the failed record>]}`, or the original body when it was not an S3 event.
    pub body: String,
    pub failure: Failure,
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub source_message_id: String,
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MessageOutcome {
    pub message_id: String,
    /// Originals rendered and stored.
    pub rendered: usize,
    /// Records with nothing to do (test events, other event types).
    pub skipped: usize,
    pub dead_letters: Vec<DeadLetter>,
    /// Set when some record should be tried again: the whole message goes back to the queue.
    pub retry: Option<Failure>,
}

/// The core both shells run: storage, settings and a concurrency limit.
pub struct Pipeline<S> {
    pub store: S,
    pub config: PipelineConfig,
    limit: Arc<Semaphore>,
}

impl<S: ObjectStore> Pipeline<S> {
    /// `concurrency`: how many originals are fetched and rendered at once.
    pub fn new(store: S, config: PipelineConfig, concurrency: usize) -> Arc<Self> {
        Arc::new(Pipeline {
            store,
            config,
            limit: Arc::new(Semaphore::new(concurrency.max(1))),
        })
    }

    /// Process a batch; outcomes come back in the order of `messages`.
    pub async fn process_batch(self: &Arc<Self>, messages: Vec<Message>) -> Vec<MessageOutcome> {
        let mut tasks = JoinSet::new();
        for (index, message) in messages.into_iter().enumerate() {
            let pipeline = Arc::clone(self);
            let span = tracing::info_span!("message", id = %message.id);
            tasks.spawn(
                async move { (index, pipeline.process_message(message).await) }.instrument(span),
            );
        }
        let mut outcomes: Vec<(usize, MessageOutcome)> = Vec::with_capacity(tasks.len());
        while let Some(joined) = tasks.join_next().await {
            // A panic inside one message must not lose the others; the panicked one is retried.
            match joined {
                Ok(done) => outcomes.push(done),
                Err(e) => warn!(error = %e, "a message task failed; it will be retried"),
            }
        }
        outcomes.sort_by_key(|(index, _)| *index);
        outcomes.into_iter().map(|(_, outcome)| outcome).collect()
    }

    /// Process every record of one message.
    pub async fn process_message(self: &Arc<Self>, message: Message) -> MessageOutcome {
        let mut outcome = MessageOutcome {
            message_id: message.id.clone(),
            ..Default::default()
        };
        let records = match notification::parse(&message.body) {
            Ok(Notification::TestEvent) => {
                info!(outcome = "skipped", "s3:TestEvent acknowledged");
                outcome.skipped = 1;
                return outcome;
            }
            Ok(Notification::Records(records)) => records,
            Err(malformed) => {
                let failure = Failure::permanent("malformed_message", malformed.to_string());
                warn!(outcome = "dead_letter", kind = failure.kind, error = %failure.message);
                telemetry::record_failure(&failure);
                outcome.dead_letters.push(DeadLetter {
                    body: message.body,
                    failure,
                    bucket: None,
                    key: None,
                    source_message_id: message.id,
                });
                return outcome;
            }
        };
        let mut tasks = JoinSet::new();
        for record in records {
            match record {
                Record::Created { object, raw } => {
                    let pipeline = Arc::clone(self);
                    let span =
                        tracing::info_span!("object", bucket = %object.bucket, key = %object.key);
                    tasks.spawn(
                        async move {
                            let result = pipeline.process_object(&object).await;
                            (object, raw, result)
                        }
                        .instrument(span),
                    );
                }
                Record::Ignored { event } => {
                    info!(outcome = "skipped", event = %event, "not an ObjectCreated event");
                    outcome.skipped += 1;
                }
                Record::Invalid { reason, raw } => {
                    let failure = Failure::permanent("invalid_record", reason);
                    warn!(outcome = "dead_letter", kind = failure.kind, error = %failure.message);
                    telemetry::record_failure(&failure);
                    outcome
                        .dead_letters
                        .push(dead_letter(&message.id, None, &raw, failure));
                }
            }
        }
        while let Some(joined) = tasks.join_next().await {
            let (object, raw, result) = match joined {
                Ok(done) => done,
                Err(e) => {
                    outcome.retry = Some(Failure::retryable("panic", e.to_string()));
                    continue;
                }
            };
            match result {
                Ok(()) => outcome.rendered += 1,
                Err(failure) if failure.retryable => outcome.retry = Some(failure),
                Err(failure) => {
                    outcome.dead_letters.push(dead_letter(
                        &message.id,
                        Some(&object),
                        &raw,
                        failure,
                    ));
                }
            }
        }
        outcome
    }

    /// Fetch, render and store one original.
    async fn process_object(self: &Arc<Self>, object: &ObjectRef) -> Result<(), Failure> {
        let _permit = self.limit.acquire().await.expect("semaphore never closed");
        let started = Instant::now();
        let result = self.fetch_render_store(object).await;
        let elapsed = started.elapsed();
        match &result {
            Ok(stats) => {
                info!(
                    outcome = "rendered",
                    bytes_in = stats.0,
                    bytes_out = stats.1,
                    ms = elapsed.as_millis() as u64
                );
                telemetry::record_rendered(stats.0, stats.1, elapsed);
            }
            Err(failure) => {
                let outcome = if failure.retryable {
                    "retry"
                } else {
                    "dead_letter"
                };
                warn!(outcome, kind = failure.kind, error = %failure.message);
                telemetry::record_failure(failure);
            }
        }
        result.map(|_| ())
    }

    /// Returns (bytes in, bytes out).
    async fn fetch_render_store(
        self: &Arc<Self>,
        object: &ObjectRef,
    ) -> Result<(u64, u64), Failure> {
        let mut fetched = fetch(&self.store, object, &self.config).await?;
        let pipeline = Arc::clone(self);
        // The bytes move to the render thread; `fetched` keeps the ETag and version for `store`.
        let bytes = std::mem::take(&mut fetched.bytes);
        let bytes_in = bytes.len() as u64;
        // libvips work is CPU-bound and blocking: keep it off the async threads.
        let rendered =
            tokio::task::spawn_blocking(move || render::render(&bytes, &pipeline.config.render))
                .await
                .map_err(|e| Failure::retryable("panic", format!("render task failed: {e}")))??;
        store(&self.store, &self.config, object, &fetched, &rendered).await?;
        // What was made is stored (the manifest lists what was not); the record still fails.
        if let Some(incomplete) = rendered.incomplete() {
            return Err(incomplete.into());
        }
        let bytes_out = rendered
            .renditions
            .iter()
            .map(|r| r.bytes.len() as u64)
            .sum();
        Ok((bytes_in, bytes_out))
    }
}

fn dead_letter(
    message_id: &str,
    object: Option<&ObjectRef>,
    raw: &Value,
    failure: Failure,
) -> DeadLetter {
    DeadLetter {
        body: json!({ "Records": [raw] }).to_string(),
        failure,
        bucket: object.map(|o| o.bucket.clone()),
        key: object.map(|o| o.key.clone()),
        source_message_id: message_id.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Env;
    use crate::report::{settle, MemoryDeadLetters};
    use crate::storage::{MemoryStore, StorageError};

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn pipeline() -> Arc<Pipeline<MemoryStore>> {
        let config =
            PipelineConfig::from_env(&Env::from_pairs([("OUTPUT_BUCKET", "out")])).unwrap();
        Pipeline::new(MemoryStore::default(), config, 2)
    }

    /// An SQS message carrying an S3 notification for these (already encoded) keys.
    fn message(id: &str, keys: &[&str]) -> Message {
        let records: Vec<Value> = keys
            .iter()
            .map(|k| json!({"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "in"}, "object": {"key": k}}}))
            .collect();
        Message {
            id: id.into(),
            body: json!({ "Records": records }).to_string(),
        }
    }

    #[tokio::test]
    async fn every_record_of_a_message_is_rendered() {
        let p = pipeline();
        p.store
            .insert("in", "uploads/a.jpg", fixture("landscape.jpg"));
        p.store
            .insert("in", "uploads/b c.png", fixture("alpha.png"));
        let outcomes = p
            .process_batch(vec![message("m1", &["uploads/a.jpg", "uploads/b+c.png"])])
            .await;
        assert_eq!(outcomes[0].rendered, 2);
        assert!(outcomes[0].dead_letters.is_empty() && outcomes[0].retry.is_none());
        let keys = p.store.keys("out");
        for folder in ["thumbnails/a.jpg/", "thumbnails/b c.png/"] {
            for file in ["thumb.webp", "small.webp", "large.webp", "manifest.json"] {
                assert!(
                    keys.contains(&format!("{folder}{file}")),
                    "{folder}{file} in {keys:?}"
                );
            }
        }
        let thumb = p
            .store
            .object("out", "thumbnails/a.jpg/thumb.webp")
            .unwrap();
        assert_eq!(thumb.content_type, "image/webp");
        assert_eq!(thumb.cache_control, "public, max-age=31536000");
        assert_eq!(thumb.metadata["source-key"], "uploads/a.jpg");
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
            },
        ];
        let outcomes = p.process_batch(messages).await;
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
    async fn transient_storage_errors_hand_the_message_back() {
        let p = pipeline();
        p.store
            .insert("in", "uploads/a.jpg", fixture("landscape.jpg"));
        p.store
            .fail_next([StorageError::Transient("503 SlowDown".into())]);
        let outcomes = p
            .process_batch(vec![message("m", &["uploads/a.jpg"])])
            .await;
        assert_eq!(
            outcomes[0].retry.as_ref().map(|f| f.kind),
            Some("storage_unavailable")
        );
        let report = settle(outcomes, Some(&MemoryDeadLetters::default())).await;
        assert_eq!(report.failed, ["m"]);
        // The retry succeeds.
        let outcomes = p
            .process_batch(vec![message("m", &["uploads/a.jpg"])])
            .await;
        assert_eq!(outcomes[0].rendered, 1);
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
        let first = settle(p.process_batch(vec![mixed()]).await, Some(&dlq)).await;
        assert_eq!(first.failed, ["m"]);
        assert!(dlq.letters.lock().unwrap().is_empty());
        let second = settle(p.process_batch(vec![mixed()]).await, Some(&dlq)).await;
        assert_eq!(second.done, ["m"]);
        let letters = dlq.letters.lock().unwrap();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].failure.kind, "outside_prefix");
        assert!(p
            .store
            .object("out", "thumbnails/a.jpg/thumb.webp")
            .is_some());
    }

    #[tokio::test]
    async fn permanent_failures_are_handed_back_when_the_dlq_cannot_take_them() {
        let p = pipeline();
        let outcomes = p
            .process_batch(vec![message("m", &["uploads/missing.jpg"])])
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
    async fn test_events_and_removals_are_acknowledged_without_work() {
        let p = pipeline();
        let test_event = Message {
            id: "t".into(),
            body: json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "in"})
                .to_string(),
        };
        let removal = Message {
            id: "r".into(),
            body: json!({"Records": [{"eventName": "ObjectRemoved:Delete", "s3": {"bucket": {"name": "in"}, "object": {"key": "uploads/x"}}}]}).to_string(),
        };
        let outcomes = p.process_batch(vec![test_event, removal]).await;
        assert!(outcomes
            .iter()
            .all(|o| o.skipped == 1 && o.dead_letters.is_empty() && o.retry.is_none()));
        assert!(p.store.keys("out").is_empty());
    }

    #[tokio::test]
    async fn duplicate_delivery_rewrites_the_same_objects() {
        let p = pipeline();
        p.store
            .insert("in", "uploads/a.jpg", fixture("landscape.jpg"));
        let deliver_and_list = || async {
            p.process_batch(vec![message("m", &["uploads/a.jpg"])])
                .await;
            let keys = p.store.keys("out");
            keys.iter()
                .map(|k| p.store.object("out", k).unwrap())
                .collect::<Vec<_>>()
        };
        let first = deliver_and_list().await;
        let second = deliver_and_list().await;
        assert!(!first.is_empty());
        assert_eq!(first, second);
    }
}
