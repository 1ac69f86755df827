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
