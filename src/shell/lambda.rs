//! The Lambda function: SQS event in, partial batch failures out. Only the messages that must
//! come back are listed in `batchItemFailures`; the rest are deleted by Lambda. An S3 Batch
//! Operations invocation (told apart by its shape) is answered in its own result format.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

use crate::batch::{Message, Pipeline};
use crate::batch_operations;
use crate::report::{settle, DeadLetterQueue};
use crate::storage::ObjectStore;

/// Handle one SQS event.
pub async fn handle<S: ObjectStore, D: DeadLetterQueue>(
    pipeline: &Arc<Pipeline<S>>,
    dlq: Option<&D>,
    event: SqsEvent,
) -> SqsBatchResponse {
    let messages = event
        .records
        .into_iter()
        .map(|m| Message {
            id: m.message_id.unwrap_or_default(),
            body: m.body.unwrap_or_default(),
        })
        .collect();
    let report = settle(pipeline.process_batch(messages).await, dlq).await;
    let mut response = SqsBatchResponse::default();
    for id in report.failed {
        response.add_failure(id);
    }
    response
}

/// Route an invocation by its shape: S3 Batch Operations, else an SQS event.
pub async fn dispatch<S: ObjectStore, D: DeadLetterQueue>(
    pipeline: &Arc<Pipeline<S>>,
    dlq: Option<&D>,
    payload: Value,
) -> Result<Value, lambda_runtime::Error> {
    if batch_operations::is_invocation(&payload) {
        let event = serde_json::from_value(payload)?;
        Ok(serde_json::to_value(
            batch_operations::handle(pipeline, event).await,
        )?)
    } else {
        let event = serde_json::from_value(payload)?;
        Ok(serde_json::to_value(handle(pipeline, dlq, event).await)?)
    }
}

/// Serve the Lambda Runtime API (`AWS_LAMBDA_RUNTIME_API`) until the process is stopped.
pub async fn run(connected: super::Connected) -> Result<(), lambda_runtime::Error> {
    let pipeline = connected.pipeline;
    let dlq = Arc::new(connected.dlq);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let pipeline = Arc::clone(&pipeline);
        let dlq = Arc::clone(&dlq);
        async move { dispatch(&pipeline, dlq.as_ref().as_ref(), event.payload).await }
    }))
    .await
}
