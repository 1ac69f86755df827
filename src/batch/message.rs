//! Take a message: its body is read as S3 records, and each record that means work becomes a
//! task of its own, so no record's failure touches another's.

use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use tokio::task::JoinSet;
use tracing::{info, warn, Instrument};

use super::outcome::Tally;
use super::Pipeline;
use crate::model::{Failure, Message, MessageOutcome, ObjectRef};
use crate::notification::{self, Notification, Record};
use crate::storage::ObjectStore;
use crate::telemetry::{self, printable};

/// A record that means work: an upload to render, or a deletion to follow.
struct Work {
    object: ObjectRef,
    /// The record as received, for a dead letter.
    raw: Value,
    removed: bool,
}

impl<S: ObjectStore> Pipeline<S> {
    /// Process every record of one message.
    pub async fn process_message(
        self: &Arc<Self>,
        message: Message,
        deadline: Option<Instant>,
    ) -> MessageOutcome {
        let mut tally = Tally::new(&message, self.config.max_receives);
        let Some(records) = read_records(&message, &mut tally) else {
            return tally.finish();
        };
        let mut tasks = JoinSet::new();
        for work in records.into_iter().filter_map(|r| work_of(r, &mut tally)) {
            let pipeline = Arc::clone(self);
            let span = tracing::info_span!("object", bucket = %printable(&work.object.bucket), key = %printable(&work.object.key));
            tasks.spawn(
                async move {
                    let result = pipeline
                        .process_object(&work.object, work.removed, deadline)
                        .await;
                    (work, result)
                }
                .instrument(span),
            );
        }
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((work, result)) => tally.record(&work.object, &work.raw, result),
                Err(e) => tally.panicked(e.to_string()),
            }
        }
        tally.finish()
    }
}

/// The records of a message; `None` when the message is settled already (a test event, or
/// not an S3 event at all).
fn read_records(message: &Message, tally: &mut Tally) -> Option<Vec<Record>> {
    match notification::parse(&message.body) {
        Ok(Notification::TestEvent) => {
            info!(outcome = "skipped", "s3:TestEvent acknowledged");
            tally.skipped();
            None
        }
        Ok(Notification::Records(records)) => Some(records),
        Err(malformed) => {
            let failure = Failure::permanent("malformed_message", malformed.to_string());
            warn!(outcome = "dead_letter", kind = failure.kind, error = %failure.message);
            telemetry::record_failure(&failure);
            tally.message_failed(failure);
            None
        }
    }
}

/// The work a record asks for; records that ask for none are settled here.
fn work_of(record: Record, tally: &mut Tally) -> Option<Work> {
    match record {
        Record::Created { object, raw } => Some(Work {
            object,
            raw,
            removed: false,
        }),
        Record::Removed { object, raw } => Some(Work {
            object,
            raw,
            removed: true,
        }),
        Record::Ignored { event } => {
            info!(outcome = "skipped", event = %printable(&event), "not an upload or deletion");
            tally.skipped();
            None
        }
        Record::Invalid { reason, raw } => {
            let failure = Failure::permanent("invalid_record", reason);
            warn!(outcome = "dead_letter", kind = failure.kind, error = %printable(&failure.message));
            telemetry::record_failure(&failure);
            tally.record_failed(None, &raw, failure);
            None
        }
    }
}
