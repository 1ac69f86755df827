//! Take a message: its body is read as S3 records, and each record that means work becomes a
//! task of its own, so no record's failure touches another's.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
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
    /// Process every record of one message; no original is started after `start_by`, and
    /// `started` is set once one is.
    pub async fn process_message(
        self: &Arc<Self>,
        message: Message,
        start_by: Option<Instant>,
        started: &Arc<AtomicBool>,
    ) -> MessageOutcome {
        let mut tally = Tally::new(
            &message,
            self.config.max_receives,
            self.config.queue_url.is_some(),
        );
        let Some(records) = read_records(&message, &mut tally) else {
            return tally.finish();
        };
        let mut tasks = JoinSet::new();
        // A record whose task panics is settled like any failure (dead-lettered with the
        // reason on the last attempt), so its record is kept by task id.
        let mut records_of = HashMap::new();
        for work in records.into_iter().filter_map(|r| work_of(r, &mut tally)) {
            let pipeline = Arc::clone(self);
            let started = Arc::clone(started);
            let span = tracing::info_span!("object", bucket = %printable(&work.object.bucket), key = %printable(&work.object.key));
            let (object, removed) = (work.object.clone(), work.removed);
            let task = tasks.spawn(
                async move {
                    #[cfg(test)]
                    if pipeline.panic_on.lock().unwrap().as_deref() == Some(&object.key) {
                        panic!("injected panic");
                    }
                    pipeline
                        .process_object(&object, removed, start_by, &started)
                        .await
                }
                .instrument(span),
            );
            records_of.insert(task.id(), work);
        }
        while let Some(joined) = tasks.join_next_with_id().await {
            let (id, result) = match joined {
                Ok((id, result)) => (id, result),
                Err(e) => (e.id(), Err(Failure::retryable("panic", e.to_string()))),
            };
            let work = &records_of[&id];
            tally.record(&work.object, &work.raw, result);
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
