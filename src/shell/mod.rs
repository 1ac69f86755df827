//! Thin entry points over the same core: local files, the SQS worker, the Lambda function.

pub mod lambda;
pub mod render;
pub mod worker;

use std::sync::Arc;

use crate::batch::Pipeline;
use crate::config::PipelineConfig;
use crate::events::{EventBridgeBus, Publisher};
use crate::report::{SqsDeadLetters, SqsRequeue};
use crate::storage::S3Store;

/// What the worker and the Lambda function share: the pipeline over S3, the SQS client, and
/// the dead-letter queue when `DLQ_URL` is set.
pub struct Connected {
    pub pipeline: Arc<Pipeline<S3Store>>,
    pub sqs: aws_sdk_sqs::Client,
    pub dlq: Option<SqsDeadLetters>,
    /// The Lambda function's own queue (`QUEUE_URL`), for copies of messages that come back.
    pub requeue: Option<SqsRequeue>,
}

/// Build the AWS clients from the standard environment (region, credentials, endpoints).
pub async fn connect(config: PipelineConfig) -> Connected {
    let sdk = aws_config::load_from_env().await;
    let events = &config.events;
    let publisher = events.bus.clone().map(|bus| {
        let client = aws_sdk_eventbridge::Client::new(&sdk);
        Publisher::new(Arc::new(EventBridgeBus::new(client)), bus, &events.source)
    });
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let dlq = config
        .dlq_url
        .clone()
        .map(|url| SqsDeadLetters::new(sqs.clone(), url));
    let requeue = config
        .queue_url
        .clone()
        .map(|url| SqsRequeue::new(sqs.clone(), url));
    Connected {
        pipeline: Pipeline::with_events(
            S3Store::new(&sdk),
            config.clone(),
            config.concurrency,
            publisher,
        ),
        sqs,
        dlq,
        requeue,
    }
}

/// Resolves when SIGTERM or SIGINT (Ctrl-C) arrives: what every long-running command stops on.
pub async fn stop_requested() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
