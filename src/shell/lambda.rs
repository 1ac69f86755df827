//! The Lambda function: SQS event in, partial batch failures out. Only the messages that must
//! come back are listed in `batchItemFailures`; the rest are deleted by Lambda.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, LambdaEvent};

use crate::batch::{Message, Pipeline};
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

/// Serve the Lambda Runtime API (`AWS_LAMBDA_RUNTIME_API`) until the process is stopped.
pub async fn run(connected: super::Connected) -> Result<(), lambda_runtime::Error> {
    let pipeline = connected.pipeline;
    let dlq = Arc::new(connected.dlq);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let pipeline = Arc::clone(&pipeline);
        let dlq = Arc::clone(&dlq);
        async move {
            Ok::<_, std::convert::Infallible>(
                handle(&pipeline, dlq.as_ref().as_ref(), event.payload).await,
            )
        }
    }))
    .await
}
