//! The long-polling worker: the same batch code as the Lambda function, for local development
//! and for running on ECS or a VM. Deletes what is done; what failed is left to the queue's
//! visibility timeout and redrive policy. On SIGTERM/SIGINT it finishes the batch it holds.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::batch::Message;
use crate::report::settle;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("cannot use queue {url}: {reason}")]
    Queue { url: String, reason: String },
}

/// Resolves when SIGTERM or SIGINT arrives.
fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        info!("stop requested: finishing the current batch");
        let _ = tx.send(true);
    });
    rx
}

pub async fn run(connected: super::Connected, queue_url: String) -> Result<(), WorkerError> {
    let sqs = connected.sqs;
    // Fail at start on a wrong queue URL instead of polling it forever.
    sqs.get_queue_attributes()
        .queue_url(&queue_url)
        .send()
        .await
        .map_err(|e| WorkerError::Queue {
            url: queue_url.clone(),
            reason: DisplayErrorContext(e).to_string(),
        })?;
    info!(queue = %queue_url, "worker started");
    let mut stop = shutdown_signal();
    let mut backoff = Duration::from_millis(500);
    while !*stop.borrow() {
        let receive = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
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
        if messages.is_empty() {
            continue;
        }
        let mut receipts = HashMap::new();
        let batch: Vec<Message> = messages
            .into_iter()
            .filter_map(|m| {
                let id = m.message_id?;
                receipts.insert(id.clone(), m.receipt_handle?);
                Some(Message {
                    id,
                    body: m.body.unwrap_or_default(),
                })
            })
            .collect();
        let outcomes = connected.pipeline.process_batch(batch).await;
        let report = settle(outcomes, connected.dlq.as_ref()).await;
        let entries: Vec<_> = report
            .done
            .iter()
            .filter_map(|id| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(id
                        .chars()
                        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                        .collect::<String>())
                    .receipt_handle(receipts.get(id)?)
                    .build()
                    .ok()
            })
            .collect();
        if !entries.is_empty() {
            match sqs
                .delete_message_batch()
                .queue_url(&queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(r) if !r.failed.is_empty() => {
                    warn!(
                        failed = r.failed.len(),
                        "some deletes failed; those messages will be delivered again"
                    )
                }
                Ok(_) => {}
                // Not fatal: undeleted messages come back and are rewritten identically.
                Err(e) => {
                    error!(error = %DisplayErrorContext(e), "delete failed; the batch will be delivered again")
                }
            }
        }
        info!(
            done = report.done.len(),
            failed = report.failed.len(),
            "batch settled"
        );
    }
    info!("worker stopped");
    Ok(())
}
