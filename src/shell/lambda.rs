//! The Lambda function: SQS event in, partial batch failures out. Only the messages that must
//! come back are listed in `batchItemFailures`; the rest are deleted by Lambda. An S3 Batch
//! Operations invocation (told apart by its shape) is answered in its own result format.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

use crate::batch::Pipeline;
use crate::batch_operations;
use crate::model::{Message, ATTEMPTS_ATTRIBUTE, SOLO_ATTRIBUTE};
use crate::report::{deliver, DeadLetterQueue, Requeue};
use crate::storage::ObjectStore;

/// Handle one SQS event; nothing is started that `deadline` would not leave time for. With
/// `requeue` (`QUEUE_URL`), what must come back is sent again as a copy instead.
pub async fn handle<S: ObjectStore, D: DeadLetterQueue, R: Requeue>(
    pipeline: &Arc<Pipeline<S>>,
    dlq: Option<&D>,
    requeue: Option<&R>,
    event: SqsEvent,
    deadline: Option<Instant>,
) -> SqsBatchResponse {
    let messages = event
        .records
        .into_iter()
        .map(|m| {
            let attribute = |name: &str| {
                m.message_attributes
                    .get(name)
                    .and_then(|a| a.string_value.clone())
            };
            Message {
                receive_count: m
                    .attributes
                    .get("ApproximateReceiveCount")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1),
                attempts: attribute(ATTEMPTS_ATTRIBUTE)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
                solo: attribute(SOLO_ATTRIBUTE).is_some_and(|v| v == "true"),
                id: m.message_id.clone().unwrap_or_default(),
                body: m.body.clone().unwrap_or_default(),
            }
        })
        .collect();
    let outcomes = pipeline.process_batch(messages, deadline).await;
    let report = deliver(outcomes, dlq, requeue, pipeline.events.as_ref(), deadline).await;
    let mut response = SqsBatchResponse::default();
    for id in report.failed {
        response.add_failure(id);
    }
    response
}

/// The invocation's deadline (milliseconds since the epoch) as an `Instant`. A value that is
/// no plausible epoch time (cargo-lambda's emulator sends its timeout, `600000`) means none.
fn deadline_instant(deadline_ms: u64) -> Option<Instant> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    const A_DAY_MS: u64 = 86_400_000;
    if deadline_ms + A_DAY_MS < now_ms {
        return None;
    }
    Some(Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms)))
}

/// Route an invocation by its shape: S3 Batch Operations, else an SQS event.
pub async fn dispatch<S: ObjectStore, D: DeadLetterQueue, R: Requeue>(
    pipeline: &Arc<Pipeline<S>>,
    dlq: Option<&D>,
    requeue: Option<&R>,
    payload: Value,
    deadline: Option<Instant>,
) -> Result<Value, lambda_runtime::Error> {
    if batch_operations::is_invocation(&payload) {
        let event = serde_json::from_value(payload)?;
        Ok(serde_json::to_value(
            batch_operations::handle(pipeline, event, deadline).await,
        )?)
    } else {
        let event = serde_json::from_value(payload)?;
        Ok(serde_json::to_value(
            handle(pipeline, dlq, requeue, event, deadline).await,
        )?)
    }
}

/// Serve the Lambda Runtime API (`AWS_LAMBDA_RUNTIME_API`) until the process is stopped.
pub async fn run(connected: super::Connected) -> Result<(), lambda_runtime::Error> {
    let pipeline = connected.pipeline;
    let dlq = Arc::new(connected.dlq);
    let requeue = Arc::new(connected.requeue);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let pipeline = Arc::clone(&pipeline);
        let dlq = Arc::clone(&dlq);
        let requeue = Arc::clone(&requeue);
        async move {
            let deadline = deadline_instant(event.context.deadline);
            dispatch(
                &pipeline,
                dlq.as_ref().as_ref(),
                requeue.as_ref().as_ref(),
                event.payload,
                deadline,
            )
            .await
        }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_deadlines_become_instants_and_emulator_durations_none() {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let deadline = deadline_instant(now_ms + 60_000).unwrap();
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            left > Duration::from_secs(55) && left <= Duration::from_secs(60),
            "{left:?}"
        );
        assert!(deadline_instant(600_000).is_none());
    }
}
