//! Settle the outcome: what each record came to, counted into its message's one outcome. A
//! retryable failure hands the whole message back, unless this is its last receive; the rest
//! are dead-lettered with their reason.

use serde_json::{json, Value};

use super::record::Done;
use crate::model::{DeadLetter, Failure, Message, MessageOutcome, ObjectRef, Resend};

/// The kind of a record (or message) not started for lack of the function's time: a
/// hand-back, not an attempt.
pub(super) const NOT_STARTED: &str = "not_started";

/// The pause before a failed message is tried again, when it is sent again rather than left
/// to the visibility timeout: 30 s, doubling with each attempt, within SQS's 900 s limit.
fn retry_delay(attempts: u32) -> u32 {
    (30u32 << attempts.saturating_sub(1).min(5)).min(900)
}

/// One message's outcome, as its records settle.
pub(super) struct Tally<'m> {
    message: &'m Message,
    /// No attempt comes after this one: a retryable failure is dead-lettered, not handed back.
    last_receive: bool,
    /// The message comes back as a copy sent by the shell (`QUEUE_URL`): a hand-back then
    /// spends no attempt and is never dead-lettered.
    resent: bool,
    /// Some record was worked on (not only handed back for lack of time).
    attempted: bool,
    outcome: MessageOutcome,
}

impl<'m> Tally<'m> {
    /// `resent`: what comes back is sent again as a copy (see [`Resend`]).
    pub fn new(message: &'m Message, max_receives: u32, resent: bool) -> Self {
        Tally {
            message,
            last_receive: message.attempts + message.receive_count >= max_receives,
            resent,
            attempted: false,
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
        self.attempted |= !matches!(&result, Err(f) if f.kind == NOT_STARTED);
        match result {
            Ok(Done::Rendered { .. }) => self.outcome.rendered += 1,
            Ok(Done::Skipped(_)) => self.outcome.skipped += 1,
            Err(failure) => self.record_failed(Some(object), raw, failure),
        }
    }

    /// A record that failed: a dead letter holds just this record, so a redrive replays it alone.
    pub fn record_failed(&mut self, object: Option<&ObjectRef>, raw: &Value, failure: Failure) {
        let is_final = !failure.retryable;
        if let Some(failure) = self.unless_retried(failure) {
            self.outcome.dead_letters.push(DeadLetter {
                body: json!({ "Records": [raw] }).to_string(),
                failure,
                bucket: object.map(|o| o.bucket.clone()),
                key: object.map(|o| o.key.clone()),
                source_message_id: self.message.id.clone(),
                upload: object.cloned(),
                is_final,
            });
        }
    }

    /// The message failed as a whole (not an S3 event, a panic, the deadline): a dead letter
    /// holds it as it came.
    pub fn message_failed(&mut self, failure: Failure) {
        self.attempted |= failure.kind != NOT_STARTED;
        let is_final = !failure.retryable;
        if let Some(failure) = self.unless_retried(failure) {
            self.outcome.dead_letters.push(DeadLetter {
                body: self.message.body.clone(),
                failure,
                bucket: None,
                key: None,
                source_message_id: self.message.id.clone(),
                upload: None,
                is_final,
            });
        }
    }

    /// The message comes back untried, to be tried alone: an invocation that held it among
    /// others ended without an answer (see `Pipeline::process_batch`). That is not blamed on
    /// it: the attempts it carries stay as they were.
    pub fn isolate(&mut self) {
        self.outcome.retry = Some(Failure::retryable(
            NOT_STARTED,
            "an invocation that held it ended without an answer: it will be tried alone",
        ));
        self.outcome.resend = Some(Resend {
            body: self.message.body.clone(),
            attempts: self.message.attempts,
            solo: true,
            delay_seconds: 0,
        });
    }

    pub fn finish(mut self) -> MessageOutcome {
        self.finish_resend(self.message.solo);
        self.outcome
    }

    /// With a retry, the copy to send instead: a hand-back spends no attempt and goes at
    /// once; a failed attempt waits.
    fn finish_resend(&mut self, solo: bool) {
        if self.outcome.retry.is_none() || self.outcome.resend.is_some() {
            return;
        }
        let before = self.message.attempts + self.message.receive_count.saturating_sub(1);
        let attempts = before + u32::from(self.attempted);
        self.outcome.resend = Some(Resend {
            body: self.message.body.clone(),
            attempts,
            solo,
            delay_seconds: if self.attempted {
                retry_delay(attempts)
            } else {
                0
            },
        });
    }

    /// A retryable failure becomes the reason the message comes back (`None`), unless no
    /// attempt is left: then, like a permanent one, it is returned for the dead-letter queue.
    /// A hand-back of a message that is sent again is never dead-lettered: it was no attempt.
    fn unless_retried(&mut self, failure: Failure) -> Option<Failure> {
        if !failure.retryable {
            return Some(failure);
        }
        if !self.last_receive || (self.resent && failure.kind == NOT_STARTED) {
            self.outcome.retry = Some(failure);
            return None;
        }
        Some(given_up(
            failure,
            self.message.attempts + self.message.receive_count,
        ))
    }
}

/// A retryable failure that ran out of attempts: dead-lettered with its reason rather than
/// moved by the redrive policy without one.
fn given_up(failure: Failure, attempts: u32) -> Failure {
    Failure::permanent(
        failure.kind,
        format!("{} (gave up after {attempts} receives)", failure.message),
    )
}
