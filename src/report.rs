//! Report the batch: send permanent failures to the dead-letter queue with their reason, and
//! say which messages are done and which must come back.

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{
    BatchResultErrorEntry, MessageAttributeValue, SendMessageBatchRequestEntry,
};
use tracing::{error, warn};

use crate::events::{Event, Publisher, NOT_PUBLISHED};
use crate::model::{DeadLetter, MessageOutcome, Resend, ATTEMPTS_ATTRIBUTE, SOLO_ATTRIBUTE};

/// SQS takes at most ten entries per batch call.
pub const BATCH: usize = 10;

/// Why SQS refused one entry of a batch, as "Code: message".
pub fn entry_reason(f: &BatchResultErrorEntry) -> String {
    format!("{}: {}", f.code(), f.message().unwrap_or(""))
}

/// The longest one SendMessageBatch call may take (the SDK's own default has no limit); with
/// a deadline, the time left before it, less a margin for the response, if that is shorter.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);
const RESPONSE_MARGIN: Duration = Duration::from_millis(300);

/// One result per message sent, in order.
pub type Sent = Vec<Result<(), String>>;

/// Where permanent failures go.
pub trait DeadLetterQueue: Send + Sync + 'static {
    /// Send up to [`BATCH`] letters in one call, giving up after `timeout`.
    fn send_batch(
        &self,
        letters: &[&DeadLetter],
        timeout: Duration,
    ) -> impl Future<Output = Sent> + Send;
}

/// The queue messages came from, to send a message that must come back again as a copy
/// (`QUEUE_URL`), so that its receive count starts over.
pub trait Requeue: Send + Sync + 'static {
    /// Send up to [`BATCH`] copies in one call, giving up after `timeout`.
    fn resend_batch(
        &self,
        copies: &[&Resend],
        timeout: Duration,
    ) -> impl Future<Output = Sent> + Send;
}

/// No queue to send copies to: messages that must come back are handed back.
pub struct HandBack;

impl Requeue for HandBack {
    async fn resend_batch(&self, copies: &[&Resend], _timeout: Duration) -> Sent {
        copies
            .iter()
            .map(|_| Err("no QUEUE_URL".to_string()))
            .collect()
    }
}

/// The per-message verdict: acknowledge (delete) or hand back for another try.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    pub done: Vec<String>,
    pub failed: Vec<String>,
}

/// `deliver` without a queue to send copies to, and without a deadline.
pub async fn settle<D: DeadLetterQueue>(outcomes: Vec<MessageOutcome>, dlq: Option<&D>) -> Report {
    deliver(outcomes, dlq, None::<&HandBack>, None, None).await
}

/// `items` in batches SQS takes in one call: at most ten, and at most 262,144 bytes all
/// together (by `size`).
fn batches<'a, T>(items: &[&'a T], size: impl Fn(&T) -> usize) -> Vec<Vec<&'a T>> {
    let mut chunks: Vec<Vec<&T>> = Vec::new();
    let mut bytes = 0;
    for &item in items {
        let n = size(item);
        match chunks.last_mut() {
            Some(chunk) if chunk.len() < BATCH && bytes + n <= MAX_MESSAGE_BYTES => {
                bytes += n;
                chunk.push(item);
            }
            _ => {
                bytes = n;
                chunks.push(vec![item]);
            }
        }
    }
    chunks
}

/// How long the next send may take: [`SEND_TIMEOUT`], or less when the deadline is nearer.
fn send_timeout(deadline: Option<Instant>) -> Duration {
    match deadline {
        Some(d) => SEND_TIMEOUT.min(
            d.saturating_duration_since(Instant::now())
                .saturating_sub(RESPONSE_MARGIN),
        ),
        None => SEND_TIMEOUT,
    }
}

/// The results for a batch not sent for want of time.
fn too_late<T>(chunk: &[T]) -> Sent {
    chunk
        .iter()
        .map(|_| Err("no time left to send".to_string()))
        .collect()
}

/// Settle every outcome. A message is done when all its records were rendered, skipped, or
/// delivered to the dead-letter queue, or when it must come back and its copy was sent to
/// `requeue`. Without a DLQ (or when sending fails) a permanent failure is handed back, so
/// the queue's redrive policy dead-letters it after its retries; letters of that message that
/// were sent will be sent again, with the same `LetterId`, which `thumbs dlq` counts once.
/// A message that goes back for a retry sends no dead letters yet: its permanent failures
/// would fail again on every receive and be dead-lettered once per receive. They are sent
/// on the receive where nothing is left to retry, or travel in the whole message if the
/// redrive policy moves it. Letters and copies go ten per call, every call ending before
/// `deadline`. With `events`, each upload dead-lettered is announced (`Upload Refused`) once
/// its letter is sent; a message one of whose events was not published is handed back like
/// one whose letter was not sent, and its retry sends both again (same `LetterId`, same
/// `outcome_id`).
pub async fn deliver<D: DeadLetterQueue, R: Requeue>(
    outcomes: Vec<MessageOutcome>,
    dlq: Option<&D>,
    requeue: Option<&R>,
    events: Option<&Publisher>,
    deadline: Option<Instant>,
) -> Report {
    let letters: Vec<&DeadLetter> = outcomes
        .iter()
        .filter(|o| o.retry.is_none())
        .flat_map(|o| &o.dead_letters)
        .collect();
    let mut letters_sent = Vec::with_capacity(letters.len());
    for chunk in batches(&letters, |l| Letter::of(l).size()) {
        let timeout = send_timeout(deadline);
        letters_sent.extend(match dlq {
            Some(_) if timeout.is_zero() => too_late(&chunk),
            Some(dlq) => dlq.send_batch(&chunk, timeout).await,
            None => chunk
                .iter()
                .map(|_| Err("DLQ_URL is not set".into()))
                .collect(),
        });
    }
    let copies: Vec<&Resend> = outcomes
        .iter()
        .filter(|o| o.retry.is_some())
        .filter_map(|o| o.resend.as_ref())
        .collect();
    let mut copies_sent = Vec::with_capacity(copies.len());
    for chunk in batches(&copies, |c| c.body.len() + 64) {
        let timeout = send_timeout(deadline);
        copies_sent.extend(match requeue {
            Some(_) if timeout.is_zero() => too_late(&chunk),
            Some(requeue) => requeue.resend_batch(&chunk, timeout).await,
            None => chunk.iter().map(|_| Err("no QUEUE_URL".into())).collect(),
        });
    }
    let mut announced = refusals(&letters, &letters_sent, events).await.into_iter();
    let mut letters_sent = letters_sent.into_iter();
    let mut copies_sent = copies_sent.into_iter();
    let mut report = Report::default();
    for outcome in outcomes {
        if let Some(retry) = &outcome.retry {
            if !outcome.dead_letters.is_empty() {
                warn!(message_id = %outcome.message_id, deferred = outcome.dead_letters.len(), retry = %retry.message, "permanent failures wait until the message's retryable ones are settled");
            }
            let resent = outcome.resend.is_some()
                && match copies_sent.next() {
                    Some(Ok(())) => true,
                    Some(Err(e)) => {
                        warn!(message_id = %outcome.message_id, error = %e, "could not send the message again; it is handed back and the receive counts");
                        false
                    }
                    None => false,
                };
            match resent {
                true => report.done.push(outcome.message_id),
                false => report.failed.push(outcome.message_id),
            }
            continue;
        }
        let mut handed_back = false;
        for _ in &outcome.dead_letters {
            if let Some(Err(e)) = announced.next() {
                warn!(message_id = %outcome.message_id, error = %e, "could not publish the refusal's event; the message will be retried");
                handed_back = true;
            }
            if let Some(Err(e)) = letters_sent.next() {
                match dlq {
                    Some(_) => {
                        error!(message_id = %outcome.message_id, error = %e, "could not send to the dead-letter queue; the message will be retried")
                    }
                    None => {
                        warn!(message_id = %outcome.message_id, "DLQ_URL is not set: a permanent failure goes back to the queue until its redrive policy moves it")
                    }
                }
                handed_back = true;
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

/// Publish `Upload Refused` for each upload whose letter was sent (one result per letter, in
/// order; `Ok` where there is nothing to publish). Not for a record that failed only because
/// its event could not be published: its outcome is stored, and a redrive announces it.
async fn refusals(letters: &[&DeadLetter], sent: &Sent, events: Option<&Publisher>) -> Sent {
    let mut results: Sent = vec![Ok(()); letters.len()];
    let Some(events) = events else {
        return results;
    };
    let (at, refused): (Vec<usize>, Vec<Event>) = letters
        .iter()
        .zip(sent)
        .enumerate()
        .filter(|(_, (l, sent))| sent.is_ok() && l.failure.kind != NOT_PUBLISHED)
        .filter_map(|(i, (l, _))| {
            let upload = l.upload.as_ref()?;
            Some((i, Event::refused(upload, &l.failure, l.is_final)))
        })
        .unzip();
    for (i, result) in at.into_iter().zip(events.publish(&refused).await) {
        results[i] = result;
    }
    results
}

/// SQS's limit on a whole message: body and attributes (names, types and values).
pub const MAX_MESSAGE_BYTES: usize = 262_144;
/// Room kept for the attributes when the body must be cut.
const ATTRIBUTES_ROOM: usize = 8_192;
/// S3's longest key; attributes holding a longer one (a forged record) are cut to it.
const MAX_KEY_BYTES: usize = 1_024;
/// The attribute naming a dead letter the same way each time it is sent.
pub const LETTER_ID: &str = "LetterId";

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
    /// What SQS counts against its size limit: the body and each attribute's name, type and
    /// value.
    pub fn size(&self) -> usize {
        self.body.len()
            + self
                .attributes
                .iter()
                .map(|(n, v)| n.len() + "String".len() + v.len())
                .sum::<usize>()
    }

    /// Shape a dead letter so SQS takes it: characters it refuses escaped, the reason cut to
    /// 1,000 characters, a bucket or key cut to S3's 1,024 bytes (a longer one is forged), and
    /// a body that would not fit cut, with its original size said; the whole body is logged
    /// then. `LetterId` is the same each time the same message's same failure is sent (the
    /// message came back after its letters were sent), so `thumbs dlq` counts it once.
    pub fn of(letter: &DeadLetter) -> Letter {
        let id = crate::digest::hex(
            [
                letter.source_message_id.as_bytes(),
                letter.failure.kind.as_bytes(),
                letter.body.as_bytes(),
            ]
            .join(&0u8)
            .as_slice(),
        );
        let mut attributes = vec![
            ("ErrorKind", letter.failure.kind.to_string()),
            (
                "ErrorMessage",
                letter.failure.message.chars().take(1000).collect(),
            ),
            ("SourceMessageId", letter.source_message_id.clone()),
            (LETTER_ID, id),
        ];
        if let Some(bucket) = &letter.bucket {
            attributes.push(("Bucket", bucket.clone()));
        }
        if let Some(key) = &letter.key {
            attributes.push(("Key", key.clone()));
        }
        for (name, value) in &mut attributes {
            *value = sqs_safe(value, false);
            if matches!(*name, "Bucket" | "Key") && value.len() > MAX_KEY_BYTES {
                let mut cut = MAX_KEY_BYTES;
                while !value.is_char_boundary(cut) {
                    cut -= 1;
                }
                value.truncate(cut);
                value.push_str("...");
            }
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

/// Send messages with string attributes in one SendMessageBatch call, giving up after
/// `timeout`; one result per message.
async fn send_batch_sqs(
    client: &aws_sdk_sqs::Client,
    url: &str,
    messages: Vec<Letter>,
    delays: Vec<u32>,
    timeout: Duration,
) -> Sent {
    let count = messages.len();
    let entries = messages
        .into_iter()
        .zip(delays)
        .enumerate()
        .map(|(i, (letter, delay))| {
            let mut entry = SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(letter.body)
                .delay_seconds(delay as i32);
            for (name, value) in letter.attributes {
                let value = MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(value)
                    .build()
                    .expect("data type and value are set");
                entry = entry.message_attributes(name, value);
            }
            entry.build().expect("id and body are set")
        })
        .collect();
    let call = client
        .send_message_batch()
        .queue_url(url)
        .set_entries(Some(entries))
        .send();
    let output = match tokio::time::timeout(timeout, call).await {
        Err(_) => return vec![Err(format!("no answer within {timeout:?}")); count],
        Ok(Err(e)) => {
            return vec![Err(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()); count]
        }
        Ok(Ok(output)) => output,
    };
    let mut results = vec![Ok(()); count];
    for f in output.failed() {
        if let Some(slot) = f
            .id()
            .parse::<usize>()
            .ok()
            .and_then(|i| results.get_mut(i))
        {
            *slot = Err(entry_reason(f));
        }
    }
    results
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
    async fn send_batch(&self, letters: &[&DeadLetter], timeout: Duration) -> Sent {
        let shaped = letters.iter().map(|l| Letter::of(l)).collect();
        send_batch_sqs(
            &self.client,
            &self.queue_url,
            shaped,
            vec![0; letters.len()],
            timeout,
        )
        .await
    }
}

/// The function's own queue on SQS, for copies of messages that must come back.
pub struct SqsRequeue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsRequeue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: String) -> Self {
        SqsRequeue { client, queue_url }
    }
}

impl Requeue for SqsRequeue {
    async fn resend_batch(&self, copies: &[&Resend], timeout: Duration) -> Sent {
        let shaped = copies
            .iter()
            .map(|c| {
                let mut attributes = vec![(ATTEMPTS_ATTRIBUTE, c.attempts.to_string())];
                if c.solo {
                    attributes.push((SOLO_ATTRIBUTE, "true".to_string()));
                }
                Letter {
                    body: c.body.clone(),
                    attributes,
                }
            })
            .collect();
        let delays = copies.iter().map(|c| c.delay_seconds.min(900)).collect();
        send_batch_sqs(&self.client, &self.queue_url, shaped, delays, timeout).await
    }
}

/// A dead-letter queue in memory, for tests; can be told to fail.
#[derive(Default)]
pub struct MemoryDeadLetters {
    pub letters: Mutex<Vec<DeadLetter>>,
    pub unavailable: std::sync::atomic::AtomicBool,
    /// SendMessageBatch calls made.
    pub calls: std::sync::atomic::AtomicUsize,
}

impl DeadLetterQueue for MemoryDeadLetters {
    async fn send_batch(&self, letters: &[&DeadLetter], _timeout: Duration) -> Sent {
        assert!(letters.len() <= BATCH, "SQS refuses batches over ten");
        self.calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        letters
            .iter()
            .map(|letter| {
                if self.unavailable.load(std::sync::atomic::Ordering::Relaxed) {
                    return Err("dead-letter queue unavailable".into());
                }
                self.letters.lock().unwrap().push((*letter).clone());
                Ok(())
            })
            .collect()
    }
}

/// The function's queue in memory, for tests: the copies sent to it.
#[derive(Default)]
pub struct MemoryRequeue {
    pub copies: Mutex<Vec<Resend>>,
}

impl Requeue for MemoryRequeue {
    async fn resend_batch(&self, copies: &[&Resend], _timeout: Duration) -> Sent {
        assert!(copies.len() <= BATCH, "SQS refuses batches over ten");
        let mut sent = self.copies.lock().unwrap();
        copies
            .iter()
            .map(|c| {
                sent.push((*c).clone());
                Ok(())
            })
            .collect()
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
            upload: None,
            is_final: true,
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
    fn a_forged_record_with_a_200000_byte_key_still_makes_a_sendable_letter() {
        let key = format!("uploads/{}", "k".repeat(200_000));
        let body = serde_json::json!({"Records": [{"s3": {"object": {"key": key}}}]}).to_string();
        let sent = Letter::of(&letter(&key, body));
        let total: usize = sent.body.len()
            + sent
                .attributes
                .iter()
                .map(|(n, v)| n.len() + "String".len() + v.len())
                .sum::<usize>();
        assert!(total <= MAX_MESSAGE_BYTES, "{total} bytes");
    }

    #[test]
    fn a_letter_sent_again_carries_the_same_letter_id() {
        let id = |l: &DeadLetter| {
            let sent = Letter::of(l);
            sent.attributes
                .into_iter()
                .find(|(n, _)| *n == LETTER_ID)
                .unwrap()
                .1
        };
        let first = letter("uploads/a.jpg", "{}".into());
        assert_eq!(id(&first), id(&first.clone()));
        let mut other = first.clone();
        other.source_message_id = "another".into();
        assert_ne!(id(&first), id(&other));
    }

    #[tokio::test]
    async fn letters_go_ten_to_a_call_and_copies_are_acknowledged() {
        let outcome = |i: usize| MessageOutcome {
            message_id: format!("m{i}"),
            dead_letters: vec![letter(&format!("uploads/{i}.jpg"), "{}".into())],
            ..Default::default()
        };
        let dlq = MemoryDeadLetters::default();
        let report = settle((0..25).map(outcome).collect(), Some(&dlq)).await;
        assert_eq!(report.done.len(), 25);
        assert_eq!(dlq.calls.load(std::sync::atomic::Ordering::Relaxed), 3);
        // A message that must come back and whose copy was sent is done (acknowledged).
        let mut back = outcome(0);
        back.retry = Some(Failure::retryable("storage_unavailable", "503"));
        back.resend = Some(Resend {
            body: "{}".into(),
            attempts: 1,
            solo: false,
            delay_seconds: 30,
        });
        let requeue = MemoryRequeue::default();
        let report = deliver(vec![back.clone()], Some(&dlq), Some(&requeue), None, None).await;
        assert_eq!(report.done, ["m0"]);
        assert_eq!(requeue.copies.lock().unwrap().len(), 1);
        // Without a queue to send it to, it is handed back.
        assert_eq!(settle(vec![back], Some(&dlq)).await.failed, ["m0"]);
        // Past the deadline nothing is sent: the message is handed back.
        let late = deliver(
            vec![outcome(1)],
            Some(&dlq),
            None::<&HandBack>,
            None,
            Some(Instant::now()),
        )
        .await;
        assert_eq!(late.failed, ["m1"]);
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
