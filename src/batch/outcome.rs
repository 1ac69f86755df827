//! Settle the outcome: what each record came to, counted into its message's one outcome. A
//! retryable failure hands the whole message back, unless this is its last receive; the rest
//! are dead-lettered with their reason.

use serde_json::{json, Value};

use super::record::Done;
use crate::model::{DeadLetter, Failure, Message, MessageOutcome, ObjectRef};

/// One message's outcome, as its records settle.
pub(super) struct Tally<'m> {
    message: &'m Message,
    /// No receive comes after this one: a retryable failure is dead-lettered, not handed back.
    last_receive: bool,
    outcome: MessageOutcome,
}

impl<'m> Tally<'m> {
    pub fn new(message: &'m Message, max_receives: u32) -> Self {
        Tally {
            message,
            last_receive: message.receive_count >= max_receives,
            outcome: MessageOutcome {
                message_id: message.id.clone(),
                ..Default::default()
            },
        }
    }

    /// A record (or the whole message) with nothing to do.
    pub fn skipped(&mut self) {
        self.outcome.skipped += 1;
    }

    /// What a record's task came to.
    pub fn record(&mut self, object: &ObjectRef, raw: &Value, result: Result<Done, Failure>) {
        match result {
            Ok(Done::Rendered { .. }) => self.outcome.rendered += 1,
            Ok(Done::Skipped(_)) => self.outcome.skipped += 1,
            Err(failure) => self.record_failed(Some(object), raw, failure),
        }
    }

    /// A record that failed: a dead letter holds just this record, so a redrive replays it alone.
    pub fn record_failed(&mut self, object: Option<&ObjectRef>, raw: &Value, failure: Failure) {
        if let Some(failure) = self.unless_retried(failure) {
            self.outcome.dead_letters.push(DeadLetter {
                body: json!({ "Records": [raw] }).to_string(),
                failure,
                bucket: object.map(|o| o.bucket.clone()),
                key: object.map(|o| o.key.clone()),
                source_message_id: self.message.id.clone(),
            });
        }
    }

    /// The message failed as a whole (not an S3 event, a panic, the deadline): a dead letter
    /// holds it as it came.
    pub fn message_failed(&mut self, failure: Failure) {
        if let Some(failure) = self.unless_retried(failure) {
            self.outcome.dead_letters.push(DeadLetter {
                body: self.message.body.clone(),
                failure,
                bucket: None,
                key: None,
                source_message_id: self.message.id.clone(),
            });
        }
    }

    /// A record's task panicked: the message comes back.
    pub fn panicked(&mut self, why: String) {
        self.outcome.retry = Some(Failure::retryable("panic", why));
    }

    pub fn finish(self) -> MessageOutcome {
        self.outcome
    }

    /// A retryable failure becomes the reason the message comes back (`None`), unless no
    /// receive is left: then, like a permanent one, it is returned for the dead-letter queue.
    fn unless_retried(&mut self, failure: Failure) -> Option<Failure> {
        if !failure.retryable {
            return Some(failure);
        }
        if !self.last_receive {
            self.outcome.retry = Some(failure);
            return None;
        }
        Some(given_up(failure, self.message.receive_count))
    }
}

/// A retryable failure that ran out of receives: dead-lettered with its reason rather than
/// moved by the redrive policy without one.
fn given_up(failure: Failure, receives: u32) -> Failure {
    Failure::permanent(
        failure.kind,
        format!("{} (gave up after {receives} receives)", failure.message),
    )
}
