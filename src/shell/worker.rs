//! The long-polling worker: the same message code as the Lambda function, for local development
//! and for running on ECS or a VM. Each message is deleted as soon as it is done, so a slow
//! image holds back nothing else; what failed is left to the queue's visibility timeout and
//! redrive policy. On SIGTERM/SIGINT it stops receiving, finishes what it holds, and exits.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::error::DisplayErrorContext;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::{info, warn, Instrument};

use crate::batch::{Message, Pipeline};
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
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        info!("stop requested: finishing the messages in hand");
        let _ = tx.send(true);
    });
    rx
}

pub async fn run(connected: super::Connected, queue_url: String) -> Result<(), WorkerError> {
    let super::Connected { pipeline, sqs, dlq } = connected;
    // Fail at start on a wrong queue URL instead of polling it forever.
    sqs.get_queue_attributes()
        .queue_url(&queue_url)
        .send()
        .await
        .map_err(|e| WorkerError::Queue {
            url: queue_url.clone(),
            reason: DisplayErrorContext(e).to_string(),
        })?;
    info!(queue = %queue_url, concurrency = pipeline.config.concurrency, "worker started");
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
            .send();
        let received = tokio::select! {
            r = receive => r,
            _ = stop.changed() => break,
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
            let message = Message {
                id,
                body: m.body.unwrap_or_default(),
            };
            let task = handle(
                Arc::clone(&pipeline),
                Arc::clone(&dlq),
                sqs.clone(),
                queue_url.clone(),
                message,
                receipt,
            );
            tasks.spawn(async move {
                task.await;
                drop(permit);
            });
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

/// Process one message; delete it if it is done, else leave it for the queue to redeliver.
async fn handle<S: ObjectStore>(
    pipeline: Arc<Pipeline<S>>,
    dlq: Arc<Option<SqsDeadLetters>>,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    message: Message,
    receipt: String,
) {
    let span = tracing::info_span!("message", id = %message.id);
    async move {
        let outcome = pipeline.process_message(message).await;
        let report = settle(vec![outcome], dlq.as_ref().as_ref()).await;
        if report.done.is_empty() {
            return; // comes back after the visibility timeout
        }
        if let Err(e) = sqs
            .delete_message()
            .queue_url(&queue_url)
            .receipt_handle(receipt)
            .send()
            .await
        {
            // Not fatal: the message comes back and its outputs are rewritten identically.
            warn!(error = %DisplayErrorContext(e), "delete failed; the message will be delivered again");
        }
    }
    .instrument(span)
    .await
}
