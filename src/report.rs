//! Report the batch: send permanent failures to the dead-letter queue with their reason, and
//! say which messages are done and which must come back.

use std::future::Future;
use std::sync::Mutex;

use aws_sdk_sqs::types::MessageAttributeValue;
use tracing::{error, warn};

use crate::model::{DeadLetter, MessageOutcome};

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

/// SQS's limit on a whole message: body and attributes (names, types and values).
pub const MAX_MESSAGE_BYTES: usize = 262_144;
/// Room kept for the attributes when the body must be cut.
const ATTRIBUTES_ROOM: usize = 8_192;

/// Text SQS accepts: it refuses most control characters and U+FFFE/U+FFFF. Those are escaped
/// as `\u{..}` (in a JSON body, as a JSON escape), so the letter is always sendable.
fn sqs_safe(text: &str, json: bool) -> String {
    let allowed = |c: char| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..);
    if text.chars().all(allowed) {
        return text.to_string();
    }
    text.chars()
        .map(|c| match c {
            c if allowed(c) => c.to_string(),
            // Inside a JSON body such characters can only stand in strings.
            c if json => format!("\\u{:04x}", c as u32),
            c => c.escape_unicode().to_string(),
        })
        .collect()
}

/// What is sent for a dead letter: the body, and the attributes by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Letter {
    pub body: String,
    pub attributes: Vec<(&'static str, String)>,
}

impl Letter {
    /// Shape a dead letter so SQS takes it: characters it refuses escaped, the reason cut to
    /// 1,000 characters (keys are kept whole: they are at most 1,024 bytes), and a body that
    /// would not fit cut, with its original size said; the whole body is logged then.
    pub fn of(letter: &DeadLetter) -> Letter {
        let mut attributes = vec![
            ("ErrorKind", letter.failure.kind.to_string()),
            (
                "ErrorMessage",
                letter.failure.message.chars().take(1000).collect(),
            ),
            ("SourceMessageId", letter.source_message_id.clone()),
        ];
        if let Some(bucket) = &letter.bucket {
            attributes.push(("Bucket", bucket.clone()));
        }
        if let Some(key) = &letter.key {
            attributes.push(("Key", key.clone()));
        }
        for (_, value) in &mut attributes {
            *value = sqs_safe(value, false);
            if value.is_empty() {
                *value = "-".into();
            }
        }
        let mut body = sqs_safe(&letter.body, true);
        let room = MAX_MESSAGE_BYTES - ATTRIBUTES_ROOM;
        if body.len() > room {
            error!(message_id = %letter.source_message_id, body = %letter.body, "dead letter body over SQS's size limit: sent cut, whole here");
            attributes.push(("BodyTruncatedFrom", body.len().to_string()));
            let mut cut = room;
            while !body.is_char_boundary(cut) {
                cut -= 1;
            }
            body.truncate(cut);
        }
        Letter { body, attributes }
    }
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
        let letter = Letter::of(letter);
        let mut request = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(letter.body);
        for (name, value) in letter.attributes {
            let value = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .expect("data type and value are set");
            request = request.message_attributes(name, value);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Failure;

    fn letter(key: &str, body: String) -> DeadLetter {
        DeadLetter {
            body,
            failure: Failure::permanent("corrupt", "x".repeat(5000)),
            bucket: Some("in".into()),
            key: Some(key.into()),
            source_message_id: "m".into(),
        }
    }

    fn sqs_accepts(text: &str) -> bool {
        text.chars().all(|c| {
            matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
        })
    }

    #[test]
    fn long_keys_are_kept_whole_and_reasons_cut() {
        let key = format!("uploads/{}", "k".repeat(1016));
        let sent = Letter::of(&letter(&key, "{}".into()));
        let get = |name| {
            sent.attributes
                .iter()
                .find(|(n, _)| *n == name)
                .unwrap()
                .1
                .clone()
        };
        assert_eq!(get("Key"), key);
        assert_eq!(get("ErrorMessage").chars().count(), 1000);
    }

    #[test]
    fn characters_sqs_refuses_are_escaped_in_body_and_attributes() {
        let key = "uploads/a\u{1}b\u{FFFE}.jpg";
        let body = serde_json::json!({"Records": [{"s3": {"object": {"key": key}}}]}).to_string();
        let sent = Letter::of(&letter(key, body));
        assert!(sqs_accepts(&sent.body), "{}", sent.body);
        assert!(sent.attributes.iter().all(|(_, v)| sqs_accepts(v)));
        // The body is still the same JSON.
        let replay: serde_json::Value = serde_json::from_str(&sent.body).unwrap();
        assert_eq!(replay["Records"][0]["s3"]["object"]["key"], key);
    }

    #[test]
    fn a_body_near_sqs_size_limit_is_cut_to_fit() {
        let sent = Letter::of(&letter("k", "é".repeat(MAX_MESSAGE_BYTES / 2)));
        let total: usize = sent.body.len()
            + sent
                .attributes
                .iter()
                .map(|(n, v)| n.len() + "String".len() + v.len())
                .sum::<usize>();
        assert!(total <= MAX_MESSAGE_BYTES, "{total}");
        assert!(sent
            .attributes
            .iter()
            .any(|(n, _)| *n == "BodyTruncatedFrom"));
    }
}
