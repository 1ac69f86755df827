//! The long-polling worker: the same message code as the Lambda function, for local development
//! and for running on ECS or a VM. Each message is deleted as soon as it is done, so a slow
//! image holds back nothing else; what failed is left to the queue's visibility timeout and
//! redrive policy. While a message is in hand its visibility is extended (a heartbeat), so a
//! slow image is never delivered twice. On SIGTERM/SIGINT it stops receiving (a long poll
//! already under way is let finish, so no message is stranded invisible in it), finishes what
//! it holds, and exits.
//!
//! A message not finished within `MESSAGE_TIMEOUT_SECONDS` fails as `timeout` (retried, and
//! dead-lettered with that reason on its last receive), so a hung render costs its upload,
//! not a slot forever. A blocking libvips call cannot be stopped from Rust: its thread keeps
//! the render's concurrency permit until it returns. When every permit is held by a render
//! running past the limit, the worker exits with an error, for its supervisor (ECS, systemd)
//! to start a fresh one; the messages in hand come back after their visibility timeout.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, info, warn, Instrument};

use crate::batch::Pipeline;
use crate::model::{Failure, Message, ATTEMPTS_ATTRIBUTE};
use crate::report::{settle, SqsDeadLetters};
use crate::storage::ObjectStore;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("cannot use queue {url}: {reason}")]
    Queue { url: String, reason: String },
    #[error("{0} render(s) have run past MESSAGE_TIMEOUT_SECONDS and hold every concurrency slot: exiting so the worker is restarted (a running libvips call cannot be stopped)")]
    Hung(usize),
}

/// Every concurrency slot is held by a render running past the message time limit.
fn all_slots_hung<S: ObjectStore>(pipeline: &Pipeline<S>) -> Result<(), WorkerError> {
    let hung = pipeline.hung_renders(pipeline.config.message_timeout);
    if hung >= pipeline.config.concurrency {
        return Err(WorkerError::Hung(hung));
    }
    Ok(())
}

/// Flips to true when SIGTERM or SIGINT arrives.
fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        super::stop_requested().await;
        info!("stop requested: finishing the messages in hand");
        let _ = tx.send(true);
    });
    rx
}

pub async fn run(connected: super::Connected, queue_url: String) -> Result<(), WorkerError> {
    let super::Connected {
        pipeline, sqs, dlq, ..
    } = connected;
    // Fail at start on a wrong queue URL instead of polling it forever.
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::VisibilityTimeout)
        .send()
        .await
        .map_err(|e| WorkerError::Queue {
            url: queue_url.clone(),
            reason: DisplayErrorContext(e).to_string(),
        })?;
    let visibility = attributes
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::VisibilityTimeout))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(30)
        .max(1);
    info!(queue = %queue_url, concurrency = pipeline.config.concurrency, visibility, "worker started");
    // Hold twice as many messages as we render at once, so downloads and uploads overlap
    // rendering, but not so many that held messages outlive their visibility timeout.
    let slots = Arc::new(Semaphore::new(pipeline.config.concurrency * 2));
    let dlq = Arc::new(dlq);
    let mut tasks = JoinSet::new();
    let mut stop = shutdown_signal();
    let mut backoff = Duration::from_millis(500);
    let mut check = tokio::time::interval(Duration::from_secs(5));
    loop {
        // Reap finished tasks so the set does not grow.
        while tasks.try_join_next().is_some() {}
        all_slots_hung(&pipeline)?;
        // Receive only when there is room for at least one more message.
        let first = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => permit.expect("never closed"),
            _ = stop.changed() => break,
            _ = check.tick() => continue,
        };
        let room = 1 + slots.available_permits().min(9) as i32;
        let receive = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(room)
            .wait_time_seconds(20)
            .message_attribute_names(ATTEMPTS_ATTRIBUTE)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send();
        tokio::pin!(receive);
        // On a stop request the poll under way is let finish: SQS may already have handed it
        // messages, which would otherwise stay invisible for the whole visibility timeout.
        let mut stopping = false;
        let received = tokio::select! {
            r = &mut receive => r,
            _ = stop.changed() => {
                stopping = true;
                receive.await
            }
        };
        let messages = match received {
            Ok(r) => {
                backoff = Duration::from_millis(500);
                r.messages.unwrap_or_default()
            }
            Err(e) => {
                warn!(error = %DisplayErrorContext(e), "receive failed; backing off");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        let mut first = Some(first);
        for m in messages {
            let (Some(id), Some(receipt)) = (m.message_id, m.receipt_handle) else {
                continue;
            };
            let permit = match first.take() {
                Some(permit) => permit,
                None => Arc::clone(&slots)
                    .acquire_owned()
                    .await
                    .expect("never closed"),
            };
            let receive_count = m
                .attributes
                .as_ref()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            let attempts = m
                .message_attributes
                .as_ref()
                .and_then(|a| a.get(ATTEMPTS_ATTRIBUTE)?.string_value()?.parse().ok())
                .unwrap_or(0);
            let message = Message {
                id,
                body: m.body.unwrap_or_default(),
                receive_count,
                attempts,
                solo: false,
            };
            let queue = Queue {
                sqs: sqs.clone(),
                url: queue_url.clone(),
                visibility,
            };
            let task = handle(
                Arc::clone(&pipeline),
                Arc::clone(&dlq),
                queue,
                message,
                receipt,
            );
            tasks.spawn(async move {
                task.await;
                drop(permit);
            });
        }
        if stopping {
            break;
        }
    }
    let held = tasks.len();
    if held > 0 {
        info!(held, "waiting for the messages in hand");
    }
    while tasks.join_next().await.is_some() {}
    info!("worker stopped");
    Ok(())
}

/// The queue a message came from, and its visibility timeout in seconds.
struct Queue {
    sqs: aws_sdk_sqs::Client,
    url: String,
    visibility: u64,
}

impl Queue {
    /// Keep a message invisible while it is worked on: every third of the visibility timeout,
    /// extend it to a whole one from now. Runs until dropped (aborted).
    async fn heartbeat(&self, receipt: &str) {
        let every =
            Duration::from_millis(self.visibility * 1000 / 3).max(Duration::from_millis(300));
        loop {
            tokio::time::sleep(every).await;
            let extended = self
                .sqs
                .change_message_visibility()
                .queue_url(&self.url)
                .receipt_handle(receipt)
                .visibility_timeout(self.visibility as i32)
                .send()
                .await;
            match extended {
                Ok(_) => debug!(seconds = self.visibility, "visibility extended"),
                Err(e) => {
                    warn!(error = %DisplayErrorContext(e), "could not extend the visibility; the message may be delivered again")
                }
            }
        }
    }
}

/// Process one message; delete it if it is done, else leave it for the queue to redeliver.
async fn handle<S: ObjectStore>(
    pipeline: Arc<Pipeline<S>>,
    dlq: Arc<Option<SqsDeadLetters>>,
    queue: Queue,
    message: Message,
    receipt: String,
) {
    let span = tracing::info_span!("message", id = %message.id);
    async move {
        let work = async {
            let outcome = within_limit(&pipeline, message).await;
            settle(vec![outcome], dlq.as_ref().as_ref()).await
        };
        // The heartbeat stops when the work ends: `select!` drops it.
        let report = tokio::select! {
            report = work => report,
            _ = queue.heartbeat(&receipt) => unreachable!("the heartbeat never ends"),
        };
        if report.done.is_empty() {
            return; // comes back after the visibility timeout
        }
        if let Err(e) = queue
            .sqs
            .delete_message()
            .queue_url(&queue.url)
            .receipt_handle(receipt)
            .send()
            .await
        {
            // Not fatal: the message comes back and finds its manifest current.
            warn!(error = %DisplayErrorContext(e), "delete failed; the message will be delivered again");
        }
    }
    .instrument(span)
    .await
}

/// Process one message within `MESSAGE_TIMEOUT_SECONDS`; past it, the message fails as
/// `timeout` (its record tasks are stopped; a render already running goes on, holding its
/// slot, until libvips returns).
async fn within_limit<S: ObjectStore>(
    pipeline: &Arc<Pipeline<S>>,
    message: Message,
) -> crate::model::MessageOutcome {
    let limit = pipeline.config.message_timeout;
    let started = Arc::new(AtomicBool::new(false));
    let work = pipeline.process_message(message.clone(), None, &started);
    match tokio::time::timeout(limit, work).await {
        Ok(outcome) => outcome,
        Err(_) => {
            warn!(
                seconds = limit.as_secs(),
                "message not finished within MESSAGE_TIMEOUT_SECONDS"
            );
            pipeline.retry_whole(
                &message,
                Failure::retryable(
                    "timeout",
                    format!(
                        "not finished within {} s (MESSAGE_TIMEOUT_SECONDS): the image took too long to render, or storage did not answer",
                        limit.as_secs()
                    ),
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Env, PipelineConfig};
    use crate::storage::MemoryStore;
    use std::time::Instant;

    #[tokio::test]
    async fn a_hung_render_costs_its_message_a_timeout_and_then_the_worker() {
        let env = Env::from_pairs([
            ("OUTPUT_BUCKET", "out"),
            ("INPUT_BUCKETS", "in"),
            ("MESSAGE_TIMEOUT_SECONDS", "1"),
            ("THUMBS_CONCURRENCY", "1"),
        ]);
        let p = Pipeline::new(
            MemoryStore::default(),
            PipelineConfig::from_env(&env).unwrap(),
            1,
        );
        let image = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/landscape.jpg"
        ))
        .unwrap();
        p.store.insert("in", "uploads/a.jpg", image);
        *p.slow_render.lock().unwrap() = Duration::from_millis(2500);
        let body = r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"in"},"object":{"key":"uploads/a.jpg"}}}]}"#;
        let message = Message {
            id: "m".into(),
            body: body.into(),
            receive_count: 3,
            ..Default::default()
        };
        let started = Instant::now();
        let outcome = within_limit(&p, message).await;
        assert!(started.elapsed() < Duration::from_millis(2000));
        // The last receive: dead-lettered with the reason, not left invisible for hours.
        let letter = &outcome.dead_letters[0];
        assert_eq!(letter.failure.kind, "timeout");
        assert!(letter.failure.message.contains("MESSAGE_TIMEOUT_SECONDS"));
        // The render still holds the only slot, past the limit: the worker gives up.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(matches!(all_slots_hung(&p), Err(WorkerError::Hung(1))));
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(all_slots_hung(&p).is_ok());
    }
}
