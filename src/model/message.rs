//! An SQS message as the shells hand it to the pipeline, and what became of it: the pipeline
//! makes the outcome, `report` turns it into dead letters and the messages that come back.

use super::{Failure, ObjectRef};

/// An SQS message, as both shells see it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    pub id: String,
    pub body: String,
    /// SQS's ApproximateReceiveCount: 1 on the first delivery.
    pub receive_count: u32,
    /// Attempts spent on earlier copies of this message (attribute `ThumbsAttempts`): a
    /// message that comes back is sent again as a new one, whose receive count starts over.
    pub attempts: u32,
    /// An invocation that held this message ended without an answer (out of memory, timeout):
    /// it is tried alone, so a crash is blamed on the message that causes it (`ThumbsSolo`).
    pub solo: bool,
}

/// The message attributes a copy of a message carries.
pub const ATTEMPTS_ATTRIBUTE: &str = "ThumbsAttempts";
pub const SOLO_ATTRIBUTE: &str = "ThumbsSolo";

/// A message sent to the queue again instead of being handed back: a new message whose
/// receive count starts over, carrying the attempts spent so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resend {
    pub body: String,
    pub attempts: u32,
    pub solo: bool,
    /// SendMessage's DelaySeconds: a retry after a failure waits; a hand-back does not.
    pub delay_seconds: u32,
}

/// A permanent failure to send to the dead-letter queue: a body a redrive can replay, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// `{"Records":[<the failed record>]}`, or the original body when it was not an S3 event.
    pub body: String,
    pub failure: Failure,
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub source_message_id: String,
    /// The upload refused (a record's failure): its `Upload Refused` event is published once
    /// the letter is sent.
    pub upload: Option<ObjectRef>,
    /// The failure was the file's own (permanent), not a retryable one that ran out of
    /// receives: a redrive would only refuse it again.
    pub is_final: bool,
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MessageOutcome {
    pub message_id: String,
    /// Originals rendered and stored.
    pub rendered: usize,
    /// Records with nothing to do (test events, other event types, unchanged or superseded
    /// uploads, folder markers, deletions).
    pub skipped: usize,
    pub dead_letters: Vec<DeadLetter>,
    /// Set when some record should be tried again: the whole message goes back to the queue.
    pub retry: Option<Failure>,
    /// With `retry`: the copy to send instead of handing the message back, when the shell
    /// can send to its queue (see [`Resend`]).
    pub resend: Option<Resend>,
}
