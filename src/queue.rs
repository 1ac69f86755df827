//! The SQS calls the operator commands need (backfill, dlq), behind a small trait so their logic
//! is tested against an in-memory queue.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
    MessageSystemAttributeName, SendMessageBatchRequestEntry,
};

use crate::report::entry_reason;
pub use crate::report::BATCH;

/// A whole call failed (the entries' own failures are returned per entry).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("queue {url}: {reason}")]
pub struct QueueError {
    pub url: String,
    pub reason: String,
}

/// A message to send; `id` is unique within its batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub id: String,
    pub body: String,
}

/// A received message, with its string message attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub message_id: String,
    pub receipt: String,
    pub body: String,
    pub attributes: BTreeMap<String, String>,
    pub receive_count: u32,
    /// SentTimestamp: when the message was sent to this queue, in ms since the epoch.
    pub sent_ms: u64,
}

/// Now, in ms since the epoch (SentTimestamp's scale).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// An entry of a batch call that failed, and why.
pub type EntryFailure = (String, String);

pub trait Queue: Send + Sync + 'static {
    /// Send up to [`BATCH`] messages; returns the entries that failed.
    fn send_batch(
        &self,
        url: &str,
        entries: &[Outgoing],
    ) -> impl Future<Output = Result<Vec<EntryFailure>, QueueError>> + Send;

    /// Receive up to ten messages, hidden from other consumers for `hide_seconds`.
    fn receive(
        &self,
        url: &str,
        hide_seconds: i32,
        wait_seconds: i32,
    ) -> impl Future<Output = Result<Vec<Received>, QueueError>> + Send;

    /// Make up to [`BATCH`] received messages visible again at once.
    fn release(
        &self,
        url: &str,
        receipts: &[&Received],
    ) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Delete up to [`BATCH`] received messages; returns the entries that failed (by message id).
    fn delete(
        &self,
        url: &str,
        received: &[&Received],
    ) -> impl Future<Output = Result<Vec<EntryFailure>, QueueError>> + Send;
}

/// Send every entry, in batches of ten, retrying only the entries that failed (and whole
/// calls that failed) with a growing pause. Returns what still failed after `attempts`.
pub async fn send_all<Q: Queue>(
    queue: &Q,
    url: &str,
    entries: Vec<Outgoing>,
    attempts: u32,
) -> Vec<(Outgoing, String)> {
    let mut failed = Vec::new();
    for chunk in entries.chunks(BATCH) {
        let mut pending: Vec<Outgoing> = chunk.to_vec();
        let mut pause = Duration::from_millis(100);
        for attempt in 1..=attempts.max(1) {
            let errors: Vec<EntryFailure> = match queue.send_batch(url, &pending).await {
                Ok(errors) => errors,
                Err(e) => pending
                    .iter()
                    .map(|o| (o.id.clone(), e.reason.clone()))
                    .collect(),
            };
            let reasons: BTreeMap<String, String> = errors.into_iter().collect();
            pending.retain(|o| reasons.contains_key(&o.id));
            if pending.is_empty() {
                break;
            }
            if attempt == attempts.max(1) {
                failed.extend(pending.drain(..).map(|o| {
                    let reason = reasons[&o.id].clone();
                    (o, reason)
                }));
                break;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }
    failed
}

/// SQS through the AWS SDK.
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
}

impl SqsQueue {
    pub fn new(client: aws_sdk_sqs::Client) -> Self {
        SqsQueue { client }
    }
}

fn queue_error<E: std::error::Error + 'static>(url: &str) -> impl Fn(E) -> QueueError + '_ {
    move |e| QueueError {
        url: url.to_string(),
        reason: DisplayErrorContext(e).to_string(),
    }
}

impl Queue for SqsQueue {
    async fn send_batch(
        &self,
        url: &str,
        entries: &[Outgoing],
    ) -> Result<Vec<EntryFailure>, QueueError> {
        let entries = entries
            .iter()
            .map(|o| {
                SendMessageBatchRequestEntry::builder()
                    .id(&o.id)
                    .message_body(&o.body)
                    .build()
                    .expect("id and body are set")
            })
            .collect();
        let output = self
            .client
            .send_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(queue_error(url))?;
        Ok(output
            .failed()
            .iter()
            .map(|f| (f.id().to_string(), entry_reason(f)))
            .collect())
    }

    async fn receive(
        &self,
        url: &str,
        hide_seconds: i32,
        wait_seconds: i32,
    ) -> Result<Vec<Received>, QueueError> {
        let output = self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(hide_seconds)
            .wait_time_seconds(wait_seconds)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .send()
            .await
            .map_err(queue_error(url))?;
        Ok(output
            .messages()
            .iter()
            .filter_map(|m| {
                let attributes = m
                    .message_attributes()
                    .map(|a| {
                        a.iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.string_value()?.to_string())))
                            .collect()
                    })
                    .unwrap_or_default();
                let system = |name| {
                    m.attributes()
                        .and_then(|a| a.get(&name))
                        .and_then(|n| n.parse().ok())
                };
                let receive_count = system(MessageSystemAttributeName::ApproximateReceiveCount)
                    .map_or(1, |n: u64| n as u32);
                let sent_ms = system(MessageSystemAttributeName::SentTimestamp).unwrap_or(0);
                Some(Received {
                    message_id: m.message_id()?.to_string(),
                    receipt: m.receipt_handle()?.to_string(),
                    body: m.body().unwrap_or_default().to_string(),
                    attributes,
                    receive_count,
                    sent_ms,
                })
            })
            .collect())
    }

    async fn release(&self, url: &str, received: &[&Received]) -> Result<(), QueueError> {
        let entries = received
            .iter()
            .enumerate()
            .map(|(i, m)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(&m.receipt)
                    .visibility_timeout(0)
                    .build()
                    .expect("id and receipt are set")
            })
            .collect();
        let output = self
            .client
            .change_message_visibility_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(queue_error(url))?;
        // A message whose release failed comes back anyway when its visibility timeout ends.
        if let Some(f) = output.failed().first() {
            tracing::warn!(
                failed = output.failed().len(),
                code = f.code(),
                "some messages stay hidden until their visibility timeout ends"
            );
        }
        Ok(())
    }

    async fn delete(
        &self,
        url: &str,
        received: &[&Received],
    ) -> Result<Vec<EntryFailure>, QueueError> {
        let entries = received
            .iter()
            .enumerate()
            .map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(&m.receipt)
                    .build()
                    .expect("id and receipt are set")
            })
            .collect();
        let output = self
            .client
            .delete_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(queue_error(url))?;
        Ok(output
            .failed()
            .iter()
            .filter_map(|f| {
                let index: usize = f.id().parse().ok()?;
                Some((received.get(index)?.message_id.clone(), entry_reason(f)))
            })
            .collect())
    }
}

/// Queues in memory, for tests: hidden messages stay hidden until released or deleted (no
/// clock), and sends can be told to fail.
#[derive(Default)]
pub struct MemoryQueue {
    state: Mutex<MemoryState>,
}

#[derive(Default)]
struct MemoryState {
    visible: BTreeMap<String, VecDeque<Received>>,
    hidden: BTreeMap<String, BTreeMap<String, Received>>,
    next_id: u64,
    /// Bodies containing one of these are refused by `send_batch`, this many more times.
    refuse: Vec<(String, u32)>,
    /// Whole send calls that fail before any entry is looked at.
    failed_calls: u32,
    send_calls: u32,
}

impl MemoryQueue {
    /// Put a message straight into `url` (as if something else had sent it).
    pub fn push(&self, url: &str, body: &str, attributes: &[(&str, &str)]) {
        let mut state = self.state.lock().unwrap();
        state.next_id += 1;
        let id = format!("m{}", state.next_id);
        let message = Received {
            message_id: id.clone(),
            receipt: String::new(),
            body: body.to_string(),
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            receive_count: 0,
            sent_ms: now_ms(),
        };
        state
            .visible
            .entry(url.into())
            .or_default()
            .push_back(message);
    }

    /// Bodies of the messages in `url`, visible and hidden.
    pub fn bodies(&self, url: &str) -> Vec<String> {
        let state = self.state.lock().unwrap();
        let visible = state.visible.get(url).into_iter().flatten();
        let hidden = state.hidden.get(url).into_iter().flat_map(|h| h.values());
        visible.chain(hidden).map(|m| m.body.clone()).collect()
    }

    /// Messages of `url` currently hidden by a receive.
    pub fn hidden(&self, url: &str) -> usize {
        let state = self.state.lock().unwrap();
        state.hidden.get(url).map_or(0, BTreeMap::len)
    }

    /// Refuse entries whose body contains `needle`, `times` times.
    pub fn refuse(&self, needle: &str, times: u32) {
        self.state
            .lock()
            .unwrap()
            .refuse
            .push((needle.to_string(), times));
    }

    /// Fail the next `calls` send calls as a whole.
    pub fn fail_calls(&self, calls: u32) {
        self.state.lock().unwrap().failed_calls = calls;
    }

    pub fn send_calls(&self) -> u32 {
        self.state.lock().unwrap().send_calls
    }
}

impl Queue for MemoryQueue {
    async fn send_batch(
        &self,
        url: &str,
        entries: &[Outgoing],
    ) -> Result<Vec<EntryFailure>, QueueError> {
        assert!(entries.len() <= BATCH, "SQS refuses batches over ten");
        let ids: BTreeSet<&str> = entries.iter().map(|o| o.id.as_str()).collect();
        assert_eq!(ids.len(), entries.len(), "batch ids must be distinct");
        let mut failed = Vec::new();
        {
            let mut state = self.state.lock().unwrap();
            state.send_calls += 1;
            if state.failed_calls > 0 {
                state.failed_calls -= 1;
                return Err(QueueError {
                    url: url.into(),
                    reason: "injected failure".into(),
                });
            }
            for o in entries {
                let refused = state
                    .refuse
                    .iter_mut()
                    .find(|(needle, times)| *times > 0 && o.body.contains(needle.as_str()));
                if let Some((_, times)) = refused {
                    *times -= 1;
                    failed.push((o.id.clone(), "InternalError: injected".to_string()));
                }
            }
        }
        for o in entries {
            if !failed.iter().any(|(id, _)| *id == o.id) {
                self.push(url, &o.body, &[]);
            }
        }
        Ok(failed)
    }

    async fn receive(
        &self,
        url: &str,
        _hide_seconds: i32,
        _wait_seconds: i32,
    ) -> Result<Vec<Received>, QueueError> {
        let mut state = self.state.lock().unwrap();
        let mut out = Vec::new();
        while out.len() < 10 {
            let Some(mut m) = state.visible.get_mut(url).and_then(VecDeque::pop_front) else {
                break;
            };
            state.next_id += 1;
            m.receipt = format!("r{}", state.next_id);
            m.receive_count += 1;
            state
                .hidden
                .entry(url.into())
                .or_default()
                .insert(m.receipt.clone(), m.clone());
            out.push(m);
        }
        Ok(out)
    }

    async fn release(&self, url: &str, received: &[&Received]) -> Result<(), QueueError> {
        let mut state = self.state.lock().unwrap();
        for r in received {
            if let Some(m) = state.hidden.get_mut(url).and_then(|h| h.remove(&r.receipt)) {
                state.visible.entry(url.into()).or_default().push_back(m);
            }
        }
        Ok(())
    }

    async fn delete(
        &self,
        url: &str,
        received: &[&Received],
    ) -> Result<Vec<EntryFailure>, QueueError> {
        let mut state = self.state.lock().unwrap();
        let mut failed = Vec::new();
        for r in received {
            let removed = state.hidden.get_mut(url).and_then(|h| h.remove(&r.receipt));
            if removed.is_none() {
                failed.push((r.message_id.clone(), "ReceiptHandleIsInvalid".to_string()));
            }
        }
        Ok(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing(n: usize) -> Vec<Outgoing> {
        (0..n)
            .map(|i| Outgoing {
                id: i.to_string(),
                body: format!("body-{i}"),
            })
            .collect()
    }

    #[tokio::test]
    async fn sends_in_batches_of_ten() {
        let q = MemoryQueue::default();
        assert!(send_all(&q, "q", outgoing(25), 3).await.is_empty());
        assert_eq!(q.send_calls(), 3);
        assert_eq!(q.bodies("q").len(), 25);
    }

    #[tokio::test]
    async fn only_the_failed_entries_are_sent_again() {
        let q = MemoryQueue::default();
        q.refuse("body-3", 2);
        q.fail_calls(1);
        assert!(send_all(&q, "q", outgoing(10), 4).await.is_empty());
        let mut bodies = q.bodies("q");
        bodies.sort();
        let mut expected: Vec<String> = outgoing(10).into_iter().map(|o| o.body).collect();
        expected.sort();
        // Each body exactly once: the entries that succeeded were not sent a second time.
        assert_eq!(bodies, expected);
        // The failed whole call, then body-3 refused twice, then sent.
        assert_eq!(q.send_calls(), 4);
    }

    #[tokio::test]
    async fn entries_that_keep_failing_are_returned_with_the_reason() {
        let q = MemoryQueue::default();
        q.refuse("body-1", 10);
        let failed = send_all(&q, "q", outgoing(3), 2).await;
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].0.body, "body-1");
        assert_eq!(failed[0].1, "InternalError: injected");
        assert_eq!(q.bodies("q").len(), 2);
    }
}
