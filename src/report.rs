//! Report the batch: send permanent failures to the dead-letter queue with their reason, and
//! say which messages are done and which must come back.

use std::future::Future;
use std::sync::Mutex;

use aws_sdk_sqs::types::MessageAttributeValue;
use tracing::{error, warn};

use crate::batch::{DeadLetter, MessageOutcome};

/// Where permanent failures go.
pub trait DeadLetterQueue: Send + Sync + 'static {
    fn send(&self, letter: &DeadLetter) -> impl Future<Output = Result<(), String>> + Send;
}

/// The per-message verdict: acknowledge (delete) or hand back for another try.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    pub done: Vec<String>,
    pub failed: Vec<String>,
}

/// Settle every outcome. A message is done when all its records were rendered, skipped, or
/// delivered to the dead-letter queue. Without a DLQ (or when sending fails) a permanent
/// failure is handed back, so the queue's redrive policy dead-letters it after its retries.
/// A message that goes back for a retry sends no dead letters yet: its permanent failures
/// would fail again on every receive and be dead-lettered once per receive. They are sent
/// on the receive where nothing is left to retry, or travel in the whole message if the
/// redrive policy moves it.
pub async fn settle<D: DeadLetterQueue>(outcomes: Vec<MessageOutcome>, dlq: Option<&D>) -> Report {
    let mut report = Report::default();
    for outcome in outcomes {
        if let Some(retry) = &outcome.retry {
            if !outcome.dead_letters.is_empty() {
                warn!(message_id = %outcome.message_id, deferred = outcome.dead_letters.len(), retry = %retry.message, "permanent failures wait until the message's retryable ones are settled");
            }
            report.failed.push(outcome.message_id);
            continue;
        }
        let mut handed_back = false;
        for letter in &outcome.dead_letters {
            match dlq {
                Some(dlq) => {
                    if let Err(e) = dlq.send(letter).await {
                        error!(message_id = %outcome.message_id, error = %e, "could not send to the dead-letter queue; the message will be retried");
                        handed_back = true;
                    }
                }
                None => {
                    warn!(message_id = %outcome.message_id, "DLQ_URL is not set: a permanent failure goes back to the queue until its redrive policy moves it");
                    handed_back = true;
                }
            }
        }
        if handed_back {
            report.failed.push(outcome.message_id);
        } else {
            report.done.push(outcome.message_id);
        }
    }
    report
}

/// SQS attribute values are limited in size; reasons are short anyway.
fn attribute(value: &str) -> MessageAttributeValue {
    let value: String = value.chars().take(1000).collect();
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(if value.is_empty() { "-".into() } else { value })
        .build()
        .expect("data type and value are set")
}

/// The dead-letter queue on SQS, with the reason as message attributes.
pub struct SqsDeadLetters {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsDeadLetters {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: String) -> Self {
        SqsDeadLetters { client, queue_url }
    }
}

impl DeadLetterQueue for SqsDeadLetters {
    async fn send(&self, letter: &DeadLetter) -> Result<(), String> {
        let mut request = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(&letter.body)
            .message_attributes("ErrorKind", attribute(letter.failure.kind))
            .message_attributes("ErrorMessage", attribute(&letter.failure.message))
            .message_attributes("SourceMessageId", attribute(&letter.source_message_id));
        if let Some(bucket) = &letter.bucket {
            request = request.message_attributes("Bucket", attribute(bucket));
        }
        if let Some(key) = &letter.key {
            request = request.message_attributes("Key", attribute(key));
        }
        request
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
    }
}

/// A dead-letter queue in memory, for tests; can be told to fail.
#[derive(Default)]
pub struct MemoryDeadLetters {
    pub letters: Mutex<Vec<DeadLetter>>,
    pub unavailable: std::sync::atomic::AtomicBool,
}

impl DeadLetterQueue for MemoryDeadLetters {
    async fn send(&self, letter: &DeadLetter) -> Result<(), String> {
        if self.unavailable.load(std::sync::atomic::Ordering::Relaxed) {
            return Err("dead-letter queue unavailable".into());
        }
        self.letters.lock().unwrap().push(letter.clone());
        Ok(())
    }
}
