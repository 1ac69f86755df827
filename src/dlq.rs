//! The dead-letter queue, for its operator: what is in it by `ErrorKind` (without consuming
//! anything), and moving messages back to the main queue, all or one kind, losing none.
//!
//! Both walk the queue the same way: receive (each message hidden for [`HIDE_SECONDS`] so the
//! walk does not see it twice), and at the end make every message not moved visible again
//! (ChangeMessageVisibility 0). Releasing each message at once instead would let the next
//! receive return it again, and the walk would never get past the first few.
//!
//! A letter sent again (its message came back after the letter was sent: a failed
//! DeleteMessage, or another letter of it that failed to send) carries the same `LetterId`:
//! both walks count it once, and a redrive moves it once and deletes the extra copies. A
//! redrive moves only letters sent before it started (SentTimestamp), so it ends even while
//! a worker that still fails sends the moved messages back as new letters.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write;

use crate::display::escaped;
use crate::notification::{self, Notification, Record};
use crate::queue::{now_ms, send_all, Outgoing, Queue, QueueError, Received, BATCH};
use crate::report::LETTER_ID;

/// How long a walk hides each message it received. A walk longer than this (tens of thousands
/// of messages) sees early messages again; they are recognised by id and not counted twice.
pub const HIDE_SECONDS: i32 = 60;

/// Receives in a row that bring nothing new before the walk ends (a single empty receive can
/// be a sampling miss on a standard queue).
const QUIET_RECEIVES: u32 = 2;

/// Messages the queue's own redrive policy moved carry no attributes of ours.
pub const NO_KIND: &str = "(none: moved by the redrive policy)";

const EXAMPLES: usize = 3;
const SEND_ATTEMPTS: u32 = 5;

/// The kind a message was dead-lettered for.
pub fn kind_of(message: &Received) -> &str {
    message
        .attributes
        .get("ErrorKind")
        .map_or(NO_KIND, String::as_str)
}

/// The original keys a message stands for: our `Key` attribute, else the S3 records inside.
pub fn keys_of(message: &Received) -> Vec<String> {
    if let Some(key) = message.attributes.get("Key") {
        return vec![key.clone()];
    }
    match notification::parse(&message.body) {
        Ok(Notification::Records(records)) => records
            .into_iter()
            .filter_map(|r| match r {
                Record::Created { object, .. } => Some(object.key),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KindCount {
    pub count: u64,
    pub examples: Vec<String>,
}

/// Messages by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub kinds: BTreeMap<String, KindCount>,
    /// Letters that repeat one already counted (the same `LetterId`).
    pub duplicates: u64,
}

impl Summary {
    fn add(&mut self, message: &Received) {
        let entry = self.kinds.entry(kind_of(message).to_string()).or_default();
        entry.count += 1;
        for key in keys_of(message) {
            if entry.examples.len() < EXAMPLES {
                entry.examples.push(key);
            }
        }
    }

    pub fn total(&self) -> u64 {
        self.kinds.values().map(|k| k.count).sum()
    }

    /// A table: the most frequent kind first.
    pub fn render(&self) -> String {
        let mut out = format!("{} message(s) in the dead-letter queue\n", self.total());
        if self.duplicates > 0 {
            let _ = writeln!(
                out,
                "({} repeated letter(s) of a failure already counted, not counted again)",
                self.duplicates
            );
        }
        out + &self.render_kinds()
    }

    /// Count, kind and example keys, the most frequent kind first.
    pub fn render_kinds(&self) -> String {
        let mut out = String::new();
        let mut kinds: Vec<_> = self.kinds.iter().collect();
        kinds.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(b.0)));
        for (kind, k) in kinds {
            let _ = writeln!(out, "{:>7}  {}", k.count, escaped(kind));
            for example in &k.examples {
                let _ = writeln!(out, "         e.g. {}", escaped(example));
            }
        }
        out
    }
}

/// Receives that bring no new message end the walk.
struct Walk<'a, Q> {
    queue: &'a Q,
    url: &'a str,
    seen: HashSet<String>,
    /// The `LetterId`s met so far.
    letters: HashSet<String>,
    /// Received and not moved: released when the walk ends.
    held: Vec<Received>,
}

impl<'a, Q: Queue> Walk<'a, Q> {
    fn new(queue: &'a Q, url: &'a str) -> Self {
        Walk {
            queue,
            url,
            seen: HashSet::new(),
            letters: HashSet::new(),
            held: Vec::new(),
        }
    }

    /// Whether `m` repeats a letter met before in this walk (the same `LetterId`).
    fn repeats(&mut self, m: &Received) -> bool {
        m.attributes
            .get(LETTER_ID)
            .is_some_and(|id| !self.letters.insert(id.clone()))
    }

    /// The next messages not seen before; `None` when the queue has nothing new.
    async fn next(&mut self) -> Result<Option<Vec<Received>>, QueueError> {
        let mut quiet = 0;
        while quiet < QUIET_RECEIVES {
            let received = self.queue.receive(self.url, HIDE_SECONDS, 1).await?;
            let mut fresh = Vec::new();
            for m in received {
                if self.seen.insert(m.message_id.clone()) {
                    fresh.push(m);
                } else {
                    // Seen before (its hiding ran out): hold the new receipt, release it later.
                    self.held.push(m);
                }
            }
            if !fresh.is_empty() {
                return Ok(Some(fresh));
            }
            quiet += 1;
        }
        Ok(None)
    }

    /// Make everything held visible again. A failed release only delays the message: it comes
    /// back when its hiding ends.
    async fn release(self) {
        for chunk in self.held.chunks(BATCH) {
            let refs: Vec<&Received> = chunk.iter().collect();
            if let Err(e) = self.queue.release(self.url, &refs).await {
                tracing::warn!(error = %e, "release failed: {} message(s) reappear within {HIDE_SECONDS}s", refs.len());
            }
        }
    }
}

/// What is in the dead-letter queue, by kind; every message is left in the queue.
pub async fn summarize<Q: Queue>(queue: &Q, dlq_url: &str) -> Result<Summary, QueueError> {
    let mut walk = Walk::new(queue, dlq_url);
    let mut summary = Summary::default();
    let result = loop {
        match walk.next().await {
            Ok(Some(batch)) => {
                for m in batch {
                    match walk.repeats(&m) {
                        true => summary.duplicates += 1,
                        false => summary.add(&m),
                    }
                    walk.held.push(m);
                }
            }
            Ok(None) => break Ok(summary),
            Err(e) => break Err(e),
        }
    };
    walk.release().await;
    result
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedriveCounts {
    /// Sent to the main queue and deleted from the DLQ (with `dry_run`: would be).
    pub moved: Summary,
    /// Not of the kind asked for: left in the DLQ.
    pub left: u64,
    /// Could not be sent: left in the DLQ.
    pub send_failed: u64,
    /// Sent, but the delete failed: now in both queues (rendered twice at worst, never lost).
    pub delete_failed: u64,
    /// Repeats of a letter moved (the same `LetterId`): deleted, not sent.
    pub duplicates: u64,
    /// Sent to the DLQ after the redrive started (SentTimestamp): left for the next one.
    pub arrived: u64,
}

/// Move messages of `kind` (all when `None`) from `dlq_url` to `queue_url`. A message is
/// deleted from the DLQ only after the main queue accepted it.
pub async fn redrive<Q: Queue>(
    queue: &Q,
    dlq_url: &str,
    queue_url: &str,
    kind: Option<&str>,
    dry_run: bool,
) -> Result<RedriveCounts, QueueError> {
    // Whatever is sent from now on has a later SentTimestamp (SQS's clock: a client clock
    // off by seconds moves or leaves the letters of those seconds, no more).
    let started_ms = now_ms();
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    let mut walk = Walk::new(queue, dlq_url);
    let mut counts = RedriveCounts::default();
    let result = loop {
        let batch = match walk.next().await {
            Ok(Some(batch)) => batch,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        let (batch, arrived): (Vec<Received>, Vec<Received>) =
            batch.into_iter().partition(|m| m.sent_ms <= started_ms);
        counts.arrived += arrived.len() as u64;
        walk.held.extend(arrived);
        let (chosen, others): (Vec<Received>, Vec<Received>) = batch
            .into_iter()
            .partition(|m| kind.is_none_or(|k| kind_of(m) == k));
        counts.left += others.len() as u64;
        walk.held.extend(others);
        let (repeats, chosen): (Vec<Received>, Vec<Received>) =
            chosen.into_iter().partition(|m| walk.repeats(m));
        counts.duplicates += repeats.len() as u64;
        if dry_run {
            walk.held.extend(repeats);
        } else if !repeats.is_empty() {
            let refs: Vec<&Received> = repeats.iter().collect();
            if let Err(e) = queue.delete(dlq_url, &refs).await {
                tracing::warn!(error = %e, "repeated letters could not be deleted; they stay in the DLQ");
            }
        }
        if dry_run {
            chosen.iter().for_each(|m| counts.moved.add(m));
            walk.held.extend(chosen);
            continue;
        }
        let outgoing = chosen
            .iter()
            .enumerate()
            .map(|(i, m)| Outgoing {
                id: i.to_string(),
                body: m.body.clone(),
            })
            .collect();
        let unsent: HashSet<String> = send_all(queue, queue_url, outgoing, SEND_ATTEMPTS)
            .await
            .into_iter()
            .map(|(o, reason)| {
                tracing::warn!(
                    reason,
                    "a message could not be sent back; it stays in the DLQ"
                );
                o.id
            })
            .collect();
        let mut sent = Vec::new();
        for (i, m) in chosen.into_iter().enumerate() {
            if unsent.contains(&i.to_string()) {
                counts.send_failed += 1;
                walk.held.push(m);
            } else {
                sent.push(m);
            }
        }
        let refs: Vec<&Received> = sent.iter().collect();
        let undeleted: HashSet<String> = match queue.delete(dlq_url, &refs).await {
            Ok(failed) => failed.into_iter().map(|(id, _)| id).collect(),
            Err(_) => sent.iter().map(|m| m.message_id.clone()).collect(),
        };
        for m in &sent {
            if undeleted.contains(&m.message_id) {
                counts.delete_failed += 1;
            }
            counts.moved.add(m);
        }
    };
    walk.release().await;
    result.map(|()| counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::MemoryQueue;

    fn letter(key: &str) -> String {
        format!(
            r#"{{"Records":[{{"eventName":"ObjectCreated:Put","s3":{{"bucket":{{"name":"in"}},"object":{{"key":"{key}"}}}}}}]}}"#
        )
    }

    /// A DLQ with 3 corrupt, 2 too_large and 1 message moved by the redrive policy.
    fn dlq() -> MemoryQueue {
        let q = MemoryQueue::default();
        for i in 0..3 {
            let key = format!("uploads/bad{i}.jpg");
            q.push(
                "dlq",
                &letter(&key),
                &[("ErrorKind", "corrupt"), ("Key", &key)],
            );
        }
        for i in 0..2 {
            let key = format!("uploads/big{i}.jpg");
            q.push(
                "dlq",
                &letter(&key),
                &[("ErrorKind", "too_large"), ("Key", &key)],
            );
        }
        q.push("dlq", &letter("uploads/flaky+one.jpg"), &[]);
        q
    }

    #[tokio::test]
    async fn the_summary_counts_by_kind_and_leaves_every_message_visible() {
        let q = dlq();
        let summary = summarize(&q, "dlq").await.unwrap();
        assert_eq!(summary.total(), 6);
        assert_eq!(summary.kinds["corrupt"].count, 3);
        assert_eq!(
            summary.kinds["corrupt"].examples,
            ["uploads/bad0.jpg", "uploads/bad1.jpg", "uploads/bad2.jpg"]
        );
        assert_eq!(summary.kinds["too_large"].count, 2);
        // No attributes: the key comes from the S3 record in the body.
        assert_eq!(summary.kinds[NO_KIND].examples, ["uploads/flaky one.jpg"]);
        assert_eq!(q.hidden("dlq"), 0);
        assert_eq!(q.bodies("dlq").len(), 6);
        // A second look sees the same.
        assert_eq!(summarize(&q, "dlq").await.unwrap(), summary);
        let table = summary.render();
        assert!(table.starts_with("6 message(s)"), "{table}");
        assert!(table.contains("      3  corrupt\n"), "{table}");
    }

    #[tokio::test]
    async fn redrive_by_kind_moves_exactly_that_kind() {
        let q = dlq();
        let counts = redrive(&q, "dlq", "main", Some("corrupt"), false)
            .await
            .unwrap();
        assert_eq!(counts.moved.total(), 3);
        assert_eq!(counts.left, 3);
        let mut moved = q.bodies("main");
        moved.sort();
        let expected: Vec<String> = (0..3)
            .map(|i| letter(&format!("uploads/bad{i}.jpg")))
            .collect();
        assert_eq!(moved, expected);
        let left = summarize(&q, "dlq").await.unwrap();
        assert_eq!(left.total(), 3);
        assert!(!left.kinds.contains_key("corrupt"));
        assert_eq!(q.hidden("dlq"), 0);
    }

    #[tokio::test]
    async fn a_dry_run_moves_nothing() {
        let q = dlq();
        let counts = redrive(&q, "dlq", "main", None, true).await.unwrap();
        assert_eq!(counts.moved.total(), 6);
        assert!(q.bodies("main").is_empty());
        assert_eq!(q.bodies("dlq").len(), 6);
        assert_eq!(q.hidden("dlq"), 0);
    }

    #[tokio::test]
    async fn a_letter_sent_again_is_counted_once_and_moved_once() {
        let q = MemoryQueue::default();
        // The message came back after its letter was sent (its delete failed): the same
        // letter twice, and another once.
        for (key, id) in [("a", "1"), ("a", "1"), ("b", "2")] {
            let key = format!("uploads/{key}.jpg");
            q.push(
                "dlq",
                &letter(&key),
                &[("ErrorKind", "corrupt"), ("Key", &key), (LETTER_ID, id)],
            );
        }
        let summary = summarize(&q, "dlq").await.unwrap();
        assert_eq!(summary.kinds["corrupt"].count, 2);
        assert_eq!(summary.duplicates, 1);
        let counts = redrive(&q, "dlq", "main", None, false).await.unwrap();
        assert_eq!(counts.moved.total(), 2);
        assert_eq!(counts.duplicates, 1);
        assert_eq!(q.bodies("main").len(), 2);
        assert!(q.bodies("dlq").is_empty(), "{:?}", q.bodies("dlq"));
    }

    /// A worker whose cause is not fixed: every message sent to `main` fails again at once
    /// and comes back to `dlq` as a new letter.
    struct Failing(MemoryQueue);

    impl Queue for Failing {
        async fn send_batch(
            &self,
            url: &str,
            entries: &[Outgoing],
        ) -> Result<Vec<crate::queue::EntryFailure>, QueueError> {
            for o in entries {
                self.0.push("dlq", &o.body, &[("ErrorKind", "corrupt")]);
            }
            self.0.send_batch(url, entries).await
        }
        async fn receive(&self, url: &str, h: i32, w: i32) -> Result<Vec<Received>, QueueError> {
            // A real receive waits on the network: without it the timeout below never fires.
            tokio::task::yield_now().await;
            self.0.receive(url, h, w).await
        }
        async fn release(&self, url: &str, r: &[&Received]) -> Result<(), QueueError> {
            self.0.release(url, r).await
        }
        async fn delete(
            &self,
            url: &str,
            r: &[&Received],
        ) -> Result<Vec<crate::queue::EntryFailure>, QueueError> {
            self.0.delete(url, r).await
        }
    }

    #[tokio::test]
    async fn a_redrive_moves_only_what_was_there_when_it_started() {
        let q = Failing(dlq());
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let counts = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            redrive(&q, "dlq", "main", None, false),
        )
        .await
        .expect("the redrive ended")
        .unwrap();
        assert_eq!(counts.moved.total(), 6);
        assert_eq!(counts.arrived, 6);
        assert_eq!(q.0.bodies("main").len(), 6);
        assert_eq!(q.0.bodies("dlq").len(), 6);
    }

    #[tokio::test]
    async fn a_message_that_cannot_be_sent_stays_in_the_dlq() {
        let q = dlq();
        q.refuse("big1", 100);
        let counts = redrive(&q, "dlq", "main", None, false).await.unwrap();
        assert_eq!(counts.moved.total(), 5);
        assert_eq!(counts.send_failed, 1);
        assert_eq!(q.bodies("main").len(), 5);
        assert_eq!(q.bodies("dlq"), [letter("uploads/big1.jpg")]);
        assert_eq!(q.hidden("dlq"), 0);
    }

    #[tokio::test]
    async fn keys_and_kinds_are_shown_escaped() {
        let q = MemoryQueue::default();
        let key = "uploads/\u{1b}[2J\nfake line.jpg";
        q.push(
            "dlq",
            &letter("x"),
            &[("ErrorKind", "corrupt\u{7}"), ("Key", key)],
        );
        let table = summarize(&q, "dlq").await.unwrap().render();
        assert!(
            !table.contains('\u{1b}') && !table.contains('\u{7}'),
            "{table:?}"
        );
        assert!(table.contains("      1  corrupt\\u{7}\n"), "{table}");
        assert!(
            table.contains("e.g. uploads/\\u{1b}[2J\\nfake line.jpg\n"),
            "{table}"
        );
    }
}
