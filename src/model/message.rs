//! An SQS message as the shells hand it to the pipeline, and what became of it: the pipeline
//! makes the outcome, `report` turns it into dead letters and the messages that come back.

use super::Failure;

/// An SQS message, as both shells see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: String,
    pub body: String,
    /// SQS's ApproximateReceiveCount: 1 on the first delivery.
    pub receive_count: u32,
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
}
