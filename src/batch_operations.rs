//! S3 Batch Operations ("Invoke AWS Lambda function" jobs, e.g. over an S3 Inventory report):
//! the invocation event (schema 1.0 and 2.0) in, its result format out. Each task becomes the
//! same S3-shaped message an upload produces and runs through the same pipeline; the outcome
//! maps to `Succeeded`, `TemporaryFailure` (Batch Operations retries it) or `PermanentFailure`
//! with the reason, which lands in the job's completion report.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::batch::Pipeline;
use crate::event_body;
use crate::model::{Message, MessageOutcome, ObjectRef};
use crate::notification::decode_key;
use crate::storage::ObjectStore;

/// Who announces Batch Operations tasks in the synthetic event.
pub const ORIGIN: &str = "thumbs-batch-operations";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub invocation_schema_version: String,
    pub invocation_id: String,
    #[serde(default)]
    pub job: Job,
    pub tasks: Vec<Task>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    #[serde(default)]
    pub id: String,
    /// Schema 2.0 only; unused.
    #[serde(default)]
    pub user_arguments: Option<BTreeMap<String, String>>,
}

/// One object. Schema 1.0 names the bucket by ARN, 2.0 by name; the key is URL-encoded.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub task_id: String,
    pub s3_key: String,
    #[serde(default)]
    pub s3_version_id: Option<String>,
    #[serde(default)]
    pub s3_bucket_arn: Option<String>,
    #[serde(default)]
    pub s3_bucket: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResultCode {
    Succeeded,
    TemporaryFailure,
    PermanentFailure,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskResult {
    pub task_id: String,
    pub result_code: ResultCode,
    pub result_string: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    pub invocation_schema_version: String,
    pub treat_missing_keys_as: ResultCode,
    pub invocation_id: String,
    pub results: Vec<TaskResult>,
}

/// A Batch Operations invocation, as opposed to an SQS event (which has `Records`).
pub fn is_invocation(payload: &Value) -> bool {
    payload.get("invocationSchemaVersion").is_some() && payload.get("tasks").is_some()
}

impl Task {
    /// The object this task names.
    pub fn object(&self) -> Result<ObjectRef, String> {
        // `arn:aws:s3:::bucket` (a bucket name cannot contain `:`).
        let from_arn = self
            .s3_bucket_arn
            .as_deref()
            .and_then(|arn| arn.rsplit(':').next());
        let bucket = self
            .s3_bucket
            .as_deref()
            .or(from_arn)
            .filter(|b| !b.is_empty())
            .ok_or("the task names no bucket (s3Bucket or s3BucketArn)")?;
        if self.s3_key.is_empty() {
            return Err("the task has an empty s3Key".into());
        }
        Ok(ObjectRef {
            bucket: bucket.to_string(),
            key: decode_key(&self.s3_key)?,
            size: None,
            etag: None,
            version_id: self.s3_version_id.clone().filter(|v| !v.is_empty()),
            sequencer: None,
        })
    }
}

/// The task's result from the message's outcome.
fn result_of(outcome: Option<&MessageOutcome>) -> (ResultCode, String) {
    let Some(outcome) = outcome else {
        return (
            ResultCode::TemporaryFailure,
            "internal error while processing; try again".into(),
        );
    };
    if let Some(retry) = &outcome.retry {
        return (ResultCode::TemporaryFailure, retry.to_string());
    }
    if let Some(letter) = outcome.dead_letters.first() {
        return (ResultCode::PermanentFailure, letter.failure.to_string());
    }
    if outcome.rendered > 0 {
        (ResultCode::Succeeded, "rendered".into())
    } else {
        (ResultCode::Succeeded, "nothing to do".into())
    }
}

/// Run every task through the pipeline and answer in Batch Operations' format.
pub async fn handle<S: ObjectStore>(
    pipeline: &Arc<Pipeline<S>>,
    event: Event,
    deadline: Option<Instant>,
) -> Response {
    let mut results: Vec<Option<(ResultCode, String)>> = vec![None; event.tasks.len()];
    let mut messages = Vec::new();
    for (index, task) in event.tasks.iter().enumerate() {
        match task.object() {
            Ok(object) => messages.push(Message {
                id: index.to_string(),
                body: event_body::object_created(&object, ORIGIN, None),
                // Batch Operations retries a TemporaryFailure itself: never the last receive.
                receive_count: 1,
                ..Default::default()
            }),
            Err(reason) => results[index] = Some((ResultCode::PermanentFailure, reason)),
        }
    }
    let sent: Vec<usize> = messages.iter().map(|m| m.id.parse().unwrap()).collect();
    let outcomes: BTreeMap<String, MessageOutcome> = pipeline
        .process_batch(messages, deadline)
        .await
        .into_iter()
        .map(|o| (o.message_id.clone(), o))
        .collect();
    for index in sent {
        results[index] = Some(result_of(outcomes.get(&index.to_string())));
    }
    Response {
        invocation_schema_version: event.invocation_schema_version,
        treat_missing_keys_as: ResultCode::PermanentFailure,
        invocation_id: event.invocation_id,
        results: event
            .tasks
            .into_iter()
            .zip(results)
            .map(|(task, result)| {
                let (result_code, result_string) = result.expect("every task has a result");
                TaskResult {
                    task_id: task.task_id,
                    result_code,
                    result_string,
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Env, PipelineConfig};
    use crate::storage::MemoryStore;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn event(name: &str) -> Event {
        let payload: Value = serde_json::from_str(&fixture(&format!("events/{name}"))).unwrap();
        assert!(is_invocation(&payload));
        serde_json::from_value(payload).unwrap()
    }

    fn pipeline() -> Arc<Pipeline<MemoryStore>> {
        let config = PipelineConfig::from_env(&Env::from_pairs([
            ("OUTPUT_BUCKET", "out"),
            ("INPUT_BUCKETS", "in"),
        ]))
        .unwrap();
        Pipeline::new(MemoryStore::default(), config, 2)
    }

    #[test]
    fn schema_1_0_names_the_bucket_by_arn() {
        let event = event("batch-operations-1.0.json");
        assert_eq!(event.invocation_schema_version, "1.0");
        let object = event.tasks[0].object().unwrap();
        assert_eq!(object.bucket, "amzn-s3-demo-bucket");
        assert_eq!(object.key, "customerImage1.jpg");
        assert_eq!(object.version_id.as_deref(), Some("1"));
    }

    #[test]
    fn schema_2_0_names_the_bucket_and_may_have_no_version() {
        let event = event("batch-operations-2.0.json");
        assert_eq!(event.job.user_arguments.as_ref().unwrap()["k1"], "v1");
        let object = event.tasks[0].object().unwrap();
        assert_eq!(object.bucket, "powertools-dataset");
        assert_eq!(object.key, "prefix/dataset/dataset.20231222.json.gz");
        assert_eq!(object.version_id, None);
    }

    #[test]
    fn keys_are_url_decoded() {
        let mut task = event("batch-operations-2.0.json").tasks.remove(0);
        task.s3_key = "uploads/caf%C3%A9+photo%2B1.jpg".into();
        assert_eq!(task.object().unwrap().key, "uploads/café photo+1.jpg");
    }

    #[test]
    fn sqs_events_are_not_invocations() {
        let sqs: Value = serde_json::from_str(&fixture("events/sqs-event.json")).unwrap();
        assert!(!is_invocation(&sqs));
    }

    #[test]
    fn the_response_has_the_documented_shape() {
        let documented: Value =
            serde_json::from_str(&fixture("events/batch-operations-response-1.0.json")).unwrap();
        let ours = Response {
            invocation_schema_version: "1.0".into(),
            treat_missing_keys_as: ResultCode::PermanentFailure,
            invocation_id: "YXNkbGZqYWRmaiBhc2RmdW9hZHNmZGpmaGFzbGtkaGZza2RmaAo".into(),
            results: vec![TaskResult {
                task_id: "dGFza2lkZ29lc2hlcmUK".into(),
                result_code: ResultCode::Succeeded,
                result_string: "[\"Alice\", \"Bob\"]".into(),
            }],
        };
        assert_eq!(serde_json::to_value(&ours).unwrap(), documented);
        let back: Response = serde_json::from_value(documented).unwrap();
        assert_eq!(back, ours);
    }

    #[tokio::test]
    async fn tasks_map_to_succeeded_and_permanent_failure_with_the_reason() {
        let p = pipeline();
        let jpeg = std::fs::read(format!(
            "{}/tests/fixtures/landscape.jpg",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        p.store.insert("in", "uploads/a b.jpg", jpeg);
        p.store
            .insert("in", "uploads/bad.jpg", b"not an image".to_vec());
        let mut event = event("batch-operations-2.0.json");
        let template = event.tasks.remove(0);
        for (id, key, bucket) in [
            ("t1", "uploads/a+b.jpg", Some("in")),
            ("t2", "uploads/bad.jpg", Some("in")),
            ("t3", "uploads/missing.jpg", Some("in")),
            ("t4", "uploads/x.jpg", None),
        ] {
            event.tasks.push(Task {
                task_id: id.into(),
                s3_key: key.into(),
                s3_bucket: bucket.map(str::to_string),
                ..template.clone()
            });
        }
        let response = handle(&p, event, None).await;
        assert_eq!(response.invocation_schema_version, "2.0");
        let codes: Vec<(&str, ResultCode)> = response
            .results
            .iter()
            .map(|r| (r.task_id.as_str(), r.result_code))
            .collect();
        assert_eq!(
            codes,
            [
                ("t1", ResultCode::Succeeded),
                ("t2", ResultCode::PermanentFailure),
                ("t3", ResultCode::PermanentFailure),
                ("t4", ResultCode::PermanentFailure),
            ]
        );
        assert!(response.results[1].result_string.starts_with("unsupported"));
        assert!(response.results[2].result_string.starts_with("not_found"));
        assert!(response.results[3].result_string.contains("no bucket"));
        assert!(p
            .store
            .keys("out")
            .contains(&"thumbnails/a b.jpg/manifest.json".to_string()));
    }

    #[tokio::test]
    async fn retryable_failures_are_temporary() {
        let p = pipeline();
        p.store.insert("in", "uploads/a.jpg", vec![1, 2, 3]);
        p.store.fail_next([crate::storage::StorageError::Transient(
            "503 SlowDown".into(),
        )]);
        let mut event = event("batch-operations-1.0.json");
        event.tasks[0].s3_bucket_arn = Some("arn:aws:s3:::in".into());
        event.tasks[0].s3_key = "uploads/a.jpg".into();
        let response = handle(&p, event, None).await;
        assert_eq!(
            response.results[0].result_code,
            ResultCode::TemporaryFailure
        );
        assert!(response.results[0]
            .result_string
            .starts_with("storage_unavailable"));
    }
}
