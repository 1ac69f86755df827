//! The long-polling worker: the same message code as the Lambda function, for local development
//! and for running on ECS or a VM. Each message is deleted as soon as it is done, so a slow
//! image holds back nothing else; what failed is left to the queue's visibility timeout and
//! redrive policy. While a message is in hand its visibility is extended (a heartbeat), so a
//! slow image is never delivered twice. On SIGTERM/SIGINT it stops receiving (a long poll
//! already under way is let finish, so no message is stranded invisible in it), finishes what
//! it holds, and exits.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, info, warn, Instrument};

use crate::batch::Pipeline;
use crate::model::Message;
use crate::report::{settle, SqsDeadLetters};
use crate::storage::ObjectStore;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("cannot use queue {url}: {reason}")]
    Queue { url: String, reason: String },
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
    let super::Connected { pipeline, sqs, dlq } = connected;
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
    loop {
        // Reap finished tasks so the set does not grow.
        while tasks.try_join_next().is_some() {}
        // Receive only when there is room for at least one more message.
        let first = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => permit.expect("never closed"),
            _ = stop.changed() => break,
        };
        let room = 1 + slots.available_permits().min(9) as i32;
        let receive = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(room)
            .wait_time_seconds(20)
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
            let message = Message {
                id,
                body: m.body.unwrap_or_default(),
                receive_count,
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
            let outcome = pipeline.process_message(message, None).await;
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
