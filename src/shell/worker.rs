//! The long-polling worker: the same message code as the Lambda function, for local development
//! and for running on ECS or a VM. Each message is deleted as soon as it is done, so a slow
//! image holds back nothing else. While a message is in hand its visibility is extended (a
//! heartbeat), so a slow image is never delivered twice. On SIGTERM/SIGINT it stops receiving
//! (a long poll already under way is let finish, so no message is stranded invisible in it),
//! finishes what it holds, and exits.
//!
//! Attempts are counted as on Lambda (see `Pipeline::triage` and `report::deliver`): a message
//! that must come back is sent to the queue again as a copy carrying `ThumbsAttempts`, after
//! the queue's visibility timeout (when a hand-back would have come back), and the original is
//! deleted; so a receive count above 1 means a worker that held it stopped without an answer
//! (killed, out of memory). Such a message is sent again marked `ThumbsSolo`, unblamed, and a
//! solo message runs with nothing else in hand; one that comes back that way is dead-lettered
//! as `crashed`. When the copy cannot be sent, the message is left to the visibility timeout,
//! and the receive counts (the redrive policy's `maxReceiveCount` is the safety net).
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
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, info, warn, Instrument};

use crate::batch::{Pipeline, Triage};
use crate::model::{Failure, Message, MessageOutcome, ATTEMPTS_ATTRIBUTE, SOLO_ATTRIBUTE};
use crate::report::{deliver, DeadLetterQueue, Report, Requeue, SqsDeadLetters, SqsRequeue};
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
        pipeline,
        sqs,
        dlq,
        requeue,
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
    let total = pipeline.config.concurrency * 2;
    let slots = Arc::new(Semaphore::new(total));
    let hands = Arc::new(Hands {
        dlq,
        requeue,
        slots: Arc::clone(&slots),
        total: total as u32,
        visibility,
    });
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
        // A slot for every message asked for, taken now: none waits unwatched for one.
        let mut permits = vec![first];
        while permits.len() < 10 {
            match Arc::clone(&slots).try_acquire_owned() {
                Ok(permit) => permits.push(permit),
                Err(_) => break,
            }
        }
        let receive = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(permits.len() as i32)
            .wait_time_seconds(20)
            .message_attribute_names(ATTEMPTS_ATTRIBUTE)
            .message_attribute_names(SOLO_ATTRIBUTE)
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
        for m in messages {
            let (Some(id), Some(receipt)) = (m.message_id, m.receipt_handle) else {
                continue;
            };
            let permit = match permits.pop() {
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
            let attribute = |name: &str| {
                m.message_attributes
                    .as_ref()
                    .and_then(|a| a.get(name)?.string_value().map(str::to_string))
            };
            let message = Message {
                id,
                body: m.body.unwrap_or_default(),
                receive_count,
                attempts: attribute(ATTEMPTS_ATTRIBUTE)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
                solo: attribute(SOLO_ATTRIBUTE).is_some_and(|v| v == "true"),
            };
            let queue = Queue {
                sqs: sqs.clone(),
                url: queue_url.clone(),
                visibility,
            };
            let task = handle(
                Arc::clone(&pipeline),
                Arc::clone(&hands),
                queue,
                message,
                receipt,
                permit,
            );
            tasks.spawn(task);
        }
        drop(permits);
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

/// What every message's task shares: where letters and copies go, the worker's slots, and the
/// queue's visibility timeout in seconds.
struct Hands<D, R> {
    dlq: Option<D>,
    requeue: Option<R>,
    slots: Arc<Semaphore>,
    total: u32,
    visibility: u64,
}

/// Work on one message holding `permit` (one of the worker's slots), and send what its outcome
/// asks for: the report says whether it is done (to delete) or must come back by itself.
async fn work_on<S: ObjectStore, D: DeadLetterQueue, R: Requeue>(
    pipeline: &Arc<Pipeline<S>>,
    hands: &Hands<D, R>,
    message: Message,
    permit: OwnedSemaphorePermit,
) -> Report {
    let mut outcome = match pipeline.triage(&message, false) {
        Triage::Settled(outcome) => outcome,
        Triage::Together => within_limit(pipeline, message).await,
        Triage::Alone => {
            // Nothing else in hand while it runs (every slot, asked for at once so that two
            // solo messages cannot each hold a part), so a crash now is its own.
            drop(permit);
            let _all = Arc::clone(&hands.slots)
                .acquire_many_owned(hands.total)
                .await
                .expect("never closed");
            within_limit(pipeline, message).await
        }
    };
    after_visibility(&mut outcome, hands.visibility);
    deliver(
        vec![outcome],
        hands.dlq.as_ref(),
        hands.requeue.as_ref(),
        pipeline.events.as_ref(),
        None,
    )
    .await
}

/// A failed attempt's copy comes back after the queue's visibility timeout, as the message
/// itself would (the worker's retry pace is the queue's, not Lambda's back-off).
fn after_visibility(outcome: &mut MessageOutcome, visibility: u64) {
    if let Some(copy) = outcome.resend.as_mut().filter(|c| c.delay_seconds > 0) {
        copy.delay_seconds = visibility.min(900) as u32;
    }
}

/// Process one message; delete it if it is done, else leave it for the queue to redeliver.
async fn handle<S: ObjectStore>(
    pipeline: Arc<Pipeline<S>>,
    hands: Arc<Hands<SqsDeadLetters, SqsRequeue>>,
    queue: Queue,
    message: Message,
    receipt: String,
    permit: OwnedSemaphorePermit,
) {
    let span = tracing::info_span!("message", id = %message.id);
    async move {
        let work = work_on(&pipeline, &hands, message, permit);
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
    use crate::model::Resend;
    use crate::report::{MemoryDeadLetters, MemoryRequeue};
    use crate::storage::{MemoryStore, StorageError};
    use std::time::Instant;

    const BODY: &str = r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"in"},"object":{"key":"uploads/a.jpg"}}}]}"#;

    /// A pipeline with `vars` set, holding the upload `uploads/a.jpg`.
    fn pipeline_with(vars: &[(&'static str, &'static str)]) -> Arc<Pipeline<MemoryStore>> {
        let mut pairs = vec![("OUTPUT_BUCKET", "out"), ("INPUT_BUCKETS", "in")];
        pairs.extend_from_slice(vars);
        let p = Pipeline::new(
            MemoryStore::default(),
            PipelineConfig::from_env(&Env::from_pairs(pairs)).unwrap(),
            1,
        );
        let image = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/landscape.jpg"
        ))
        .unwrap();
        p.store.insert("in", "uploads/a.jpg", image);
        p
    }

    /// A worker's pipeline (its queue is where copies go) with `slots` slots.
    fn worker(
        slots: usize,
    ) -> (
        Arc<Pipeline<MemoryStore>>,
        Hands<MemoryDeadLetters, MemoryRequeue>,
    ) {
        let p = pipeline_with(&[("QUEUE_URL", "https://sqs/work")]);
        let hands = Hands {
            dlq: Some(MemoryDeadLetters::default()),
            requeue: Some(MemoryRequeue::default()),
            slots: Arc::new(Semaphore::new(slots)),
            total: slots as u32,
            visibility: 7,
        };
        (p, hands)
    }

    fn received(receive_count: u32, attempts: u32, solo: bool) -> Message {
        Message {
            id: "m".into(),
            body: BODY.into(),
            receive_count,
            attempts,
            solo,
        }
    }

    async fn run(
        p: &Arc<Pipeline<MemoryStore>>,
        hands: &Hands<MemoryDeadLetters, MemoryRequeue>,
        message: Message,
    ) -> Report {
        let permit = Arc::clone(&hands.slots).acquire_owned().await.unwrap();
        work_on(p, hands, message, permit).await
    }

    fn copies(hands: &Hands<MemoryDeadLetters, MemoryRequeue>) -> Vec<Resend> {
        hands
            .requeue
            .as_ref()
            .unwrap()
            .copies
            .lock()
            .unwrap()
            .clone()
    }

    fn letters(hands: &Hands<MemoryDeadLetters, MemoryRequeue>) -> Vec<(&'static str, String)> {
        let dlq = hands.dlq.as_ref().unwrap().letters.lock().unwrap();
        dlq.iter()
            .map(|l| (l.failure.kind, l.failure.message.clone()))
            .collect()
    }

    #[tokio::test]
    async fn a_message_a_killed_worker_held_comes_back_untried_and_unblamed() {
        let (p, hands) = worker(2);
        // Received again without an answer: the worker holding it was killed.
        let report = run(&p, &hands, received(2, 1, false)).await;
        assert_eq!(
            report.done,
            ["m"],
            "the original is deleted, not left to count receives"
        );
        assert_eq!(
            copies(&hands),
            [Resend {
                body: BODY.into(),
                attempts: 1,
                solo: true,
                delay_seconds: 0
            }]
        );
        assert!(
            p.store.keys("out").is_empty(),
            "it was tried among others again"
        );
        assert!(letters(&hands).is_empty());
    }

    #[tokio::test]
    async fn a_solo_message_that_comes_back_unanswered_is_dead_lettered_as_crashed() {
        let (p, hands) = worker(2);
        let report = run(&p, &hands, received(2, 0, true)).await;
        assert_eq!(report.done, ["m"]);
        assert_eq!(letters(&hands)[0].0, "crashed");
        assert!(copies(&hands).is_empty());
    }

    #[tokio::test]
    async fn a_failed_attempt_is_a_copy_after_the_visibility_timeout_until_the_last() {
        let (p, hands) = worker(2);
        let slow_down = || StorageError::Transient("SlowDown".into());
        p.store.fail_next([slow_down()]);
        let report = run(&p, &hands, received(1, 0, false)).await;
        assert_eq!(report.done, ["m"]);
        assert_eq!(
            copies(&hands),
            [Resend {
                body: BODY.into(),
                attempts: 1,
                solo: false,
                delay_seconds: 7
            }]
        );
        // The third attempt (MAX_RECEIVES 3), carried by the copy: dead-lettered with the reason.
        p.store.fail_next([slow_down()]);
        let report = run(&p, &hands, received(1, 2, false)).await;
        assert_eq!(report.done, ["m"]);
        let [(kind, message)] = &letters(&hands)[..] else {
            panic!("{:?}", letters(&hands))
        };
        assert_eq!(*kind, "storage_unavailable");
        assert!(message.ends_with("(gave up after 3 receives)"), "{message}");
        assert_eq!(copies(&hands).len(), 1);
    }

    #[tokio::test]
    async fn a_solo_message_runs_with_nothing_else_in_hand() {
        let (p, hands) = worker(3);
        let other = Arc::clone(&hands.slots).acquire_owned().await.unwrap();
        let solo = run(&p, &hands, received(1, 0, true));
        tokio::pin!(solo);
        assert!(
            tokio::time::timeout(Duration::from_millis(300), &mut solo)
                .await
                .is_err(),
            "it ran beside another message"
        );
        assert!(p.store.keys("out").is_empty());
        drop(other);
        let report = solo.await;
        assert_eq!(report.done, ["m"]);
        assert!(p
            .store
            .object("out", "thumbnails/a.jpg/manifest.json")
            .is_some());
        assert_eq!(hands.slots.available_permits(), 3);
    }

    #[tokio::test]
    async fn a_hung_render_costs_its_message_a_timeout_and_then_the_worker() {
        let p = pipeline_with(&[
            ("MESSAGE_TIMEOUT_SECONDS", "1"),
            ("THUMBS_CONCURRENCY", "1"),
        ]);
        *p.slow_render.lock().unwrap() = Duration::from_millis(2500);
        let message = Message {
            receive_count: 3,
            ..received(1, 0, false)
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
