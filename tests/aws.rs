//! Integration tests of the S3 storage, the SQS dead-letter queue and the Lambda handler
//! against a local AWS emulator (moto). `make test` starts one and sets `AWS_ENDPOINT_URL`;
//! by hand: `eval "$(scripts/local-aws/local-aws.sh up)"`. Each test makes its own uuid-named buckets
//! and queues.

use aws_lambda_events::event::sqs::SqsEvent;
use thumbs::batch::Pipeline;
use thumbs::config::{Env, PipelineConfig};
use thumbs::model::ObjectRef;
use thumbs::report::{HandBack, SqsDeadLetters};
use thumbs::shell::lambda;
use thumbs::storage::{ObjectLister, ObjectStore, S3Store, StorageError};

struct Local {
    sdk: aws_config::SdkConfig,
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    input: String,
    output: String,
    dlq_url: String,
}

async fn local() -> Local {
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL").is_some(),
        "AWS_ENDPOINT_URL is not set: start the emulator with `eval \"$(scripts/local-aws/local-aws.sh up)\"` (make test does)"
    );
    let sdk = aws_config::load_from_env().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (input, output) = (format!("in-{id}"), format!("out-{id}"));
    for bucket in [&input, &output] {
        s3.create_bucket().bucket(bucket).send().await.unwrap();
    }
    let dlq_url = sqs
        .create_queue()
        .queue_name(format!("dlq-{id}"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    Local {
        sdk,
        s3,
        sqs,
        input,
        output,
        dlq_url,
    }
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

impl Local {
    /// Upload an original; returns its ETag (bare, as events carry it).
    async fn upload(&self, key: &str, body: Vec<u8>) -> String {
        let put = self
            .s3
            .put_object()
            .bucket(&self.input)
            .key(key)
            .body(body.into())
            .send()
            .await
            .unwrap();
        put.e_tag().unwrap().trim_matches('"').to_string()
    }

    fn object(&self, key: &str) -> ObjectRef {
        ObjectRef {
            bucket: self.input.clone(),
            key: key.into(),
            size: None,
            etag: None,
            version_id: None,
            sequencer: None,
        }
    }

    fn config(&self) -> PipelineConfig {
        PipelineConfig::from_env(&Env::from_pairs([
            ("OUTPUT_BUCKET", self.output.as_str()),
            ("INPUT_BUCKETS", self.input.as_str()),
            ("DLQ_URL", self.dlq_url.as_str()),
        ]))
        .unwrap()
    }

    async fn output_keys(&self) -> Vec<String> {
        let listed = self
            .s3
            .list_objects_v2()
            .bucket(&self.output)
            .send()
            .await
            .unwrap();
        let mut keys: Vec<String> = listed
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect();
        keys.sort();
        keys
    }
}

#[tokio::test]
async fn s3_store_reports_missing_objects_as_not_found() {
    let local = local().await;
    let store = S3Store::new(&local.sdk);
    let err = store
        .get(&local.object("uploads/nope.jpg"), 1 << 20)
        .await
        .unwrap_err();
    assert_eq!(err, StorageError::NotFound);
}

#[tokio::test]
async fn s3_store_refuses_objects_over_the_byte_limit() {
    let local = local().await;
    local.upload("uploads/big.jpg", vec![0u8; 5000]).await;
    let store = S3Store::new(&local.sdk);
    let err = store
        .get(&local.object("uploads/big.jpg"), 4999)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        StorageError::TooLarge {
            bytes: 5000,
            max: 4999
        }
    );
    let fetched = store
        .get(&local.object("uploads/big.jpg"), 5000)
        .await
        .unwrap();
    assert_eq!(fetched.bytes.len(), 5000);
    assert!(fetched.etag.is_some_and(|e| !e.contains('"')));
}

/// Keys S3 allows and XML 1.0 cannot carry (control characters, U+FFFE), and keys whose
/// percent signs and pluses must not be decoded twice.
const ODD_KEYS: &[&str] = &[
    "uploads/bell\u{7}.jpg",
    "uploads/esc\u{1b}[31m.jpg",
    // (A newline is left out: moto's routing cannot store such a key.)
    "uploads/cr\rx.jpg",
    "uploads/not-a-char\u{fffe}.jpg",
    "uploads/100%.jpg",
    "uploads/a%2Fb%20c.jpg",
    "uploads/plus+and space.jpg",
    "uploads/zz-plain.jpg",
];

#[tokio::test]
async fn listing_returns_keys_xml_cannot_carry_exactly() {
    let local = local().await;
    for key in ODD_KEYS {
        local.upload(key, vec![1]).await;
    }
    let store = S3Store::new(&local.sdk);
    let (mut listed, mut next) = (Vec::new(), None);
    loop {
        // Three keys a page: continuation tokens and StartAfter pass odd keys too.
        let page = store
            .list_page(&local.input, "uploads/", None, next.as_deref(), 3)
            .await
            .unwrap();
        listed.extend(page.objects.into_iter().map(|o| o.key));
        match page.next {
            Some(token) => next = Some(token),
            None => break,
        }
    }
    let mut expected: Vec<String> = ODD_KEYS.iter().map(|k| k.to_string()).collect();
    expected.sort();
    assert_eq!(listed, expected);
    // Resuming after a key with percent signs. (moto echoes StartAfter unencoded, so a key
    // XML cannot carry fails there as StartAfter; S3 encodes it with the keys.)
    assert_eq!(expected[1], "uploads/a%2Fb%20c.jpg");
    let after = store
        .list_page(&local.input, "uploads/", Some(&expected[1]), None, 1000)
        .await
        .unwrap();
    let rest: Vec<String> = after.objects.into_iter().map(|o| o.key).collect();
    assert_eq!(rest, expected[2..]);
}

#[tokio::test]
async fn unreachable_endpoint_is_a_retryable_failure() {
    let local = local().await;
    // Nothing listens on the discard port.
    let sdk = aws_config::from_env()
        .endpoint_url("http://127.0.0.1:9")
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let err = S3Store::new(&sdk)
        .get(&local.object("uploads/x.jpg"), 100)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
}

#[tokio::test]
async fn lambda_handler_renders_to_s3_and_dead_letters_the_corrupt_upload() {
    let local = local().await;
    let good_etag = local
        .upload(
            "uploads/holiday photos/beach day+1.jpg",
            fixture("landscape.jpg"),
        )
        .await;
    let broken_etag = local
        .upload("uploads/broken.jpg", fixture("truncated.jpg"))
        .await;
    let pipeline = Pipeline::new(S3Store::new(&local.sdk), local.config(), 2);
    let dlq = SqsDeadLetters::new(local.sqs.clone(), local.dlq_url.clone());

    // A real S3 notification (tests/fixtures/events), pointed at this test's bucket, plus a
    // corrupt upload and a test event, as Lambda delivers them.
    let mut event: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/tests/fixtures/events/sqs-event.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    let retarget = |body: &str, key: Option<&str>, etag: &str| {
        let mut body: serde_json::Value = serde_json::from_str(body).unwrap();
        body["Records"][0]["s3"]["bucket"]["name"] = local.input.clone().into();
        body["Records"][0]["s3"]["object"]["eTag"] = etag.into();
        if let Some(key) = key {
            body["Records"][0]["s3"]["object"]["key"] = key.into();
        }
        body.to_string()
    };
    let good = event["Records"][0]["body"].as_str().unwrap().to_string();
    event["Records"][0]["body"] = retarget(&good, None, &good_etag).into();
    let mut corrupt = event["Records"][0].clone();
    corrupt["messageId"] = "corrupt-1".into();
    corrupt["body"] = retarget(&good, Some("uploads/broken.jpg"), &broken_etag).into();
    event["Records"].as_array_mut().unwrap().push(corrupt);
    let event: SqsEvent = serde_json::from_value(event).unwrap();

    let response = lambda::handle(&pipeline, Some(&dlq), None::<&HandBack>, event, None).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    let folder = "thumbnails/holiday photos/beach day+1.jpg/";
    let manifest = local
        .s3
        .get_object()
        .bucket(&local.output)
        .key(format!("{folder}manifest.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(manifest.cache_control(), Some("no-cache"));
    let manifest: serde_json::Value =
        serde_json::from_slice(&manifest.body.collect().await.unwrap().to_vec()).unwrap();
    assert_eq!(manifest["source"]["etag"], good_etag.as_str());
    let mut expected: Vec<String> = manifest["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap().to_string())
        .chain([format!("{folder}manifest.json")])
        // The corrupt first upload leaves a failure manifest (issue 17: `--only-missing` must not
        // enqueue it again until the key changes), and no renditions.
        .chain(["thumbnails/broken.jpg/manifest.json".to_string()])
        .collect();
    expected.sort();
    assert_eq!(expected.len(), 5);
    assert_eq!(local.output_keys().await, expected);
    let failure = local
        .s3
        .get_object()
        .bucket(&local.output)
        .key("thumbnails/broken.jpg/manifest.json")
        .send()
        .await
        .unwrap();
    let failure: serde_json::Value =
        serde_json::from_slice(&failure.body.collect().await.unwrap().to_vec()).unwrap();
    assert_eq!(failure["renditions"].as_array().map(Vec::len), Some(0));
    assert_eq!(failure["failures"][0]["kind"], "corrupt", "{failure}");
    let thumb = manifest["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["preset"] == "thumb")
        .unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(thumb.starts_with(&format!("{folder}thumb.")) && thumb.ends_with(".webp"));
    let head = local
        .s3
        .head_object()
        .bucket(&local.output)
        .key(thumb)
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("image/webp"));
    assert_eq!(
        head.cache_control(),
        Some("public, max-age=31536000, immutable")
    );
    let metadata = head.metadata().unwrap();
    assert_eq!(
        metadata["source-key"],
        "uploads/holiday photos/beach day+1.jpg"
    );
    assert!(metadata.contains_key("source-etag"));

    let received = local
        .sqs
        .receive_message()
        .queue_url(&local.dlq_url)
        .message_attribute_names("All")
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    let letters = received.messages();
    assert_eq!(letters.len(), 1);
    let attributes = letters[0].message_attributes().unwrap();
    let attr = |name: &str| attributes[name].string_value().unwrap().to_string();
    assert_eq!(attr("ErrorKind"), "corrupt");
    assert_eq!(attr("Key"), "uploads/broken.jpg");
    assert_eq!(attr("SourceMessageId"), "corrupt-1");
    assert!(
        attr("ErrorMessage").contains("Premature end"),
        "{}",
        attr("ErrorMessage")
    );
}

#[tokio::test]
async fn without_a_dlq_a_permanent_failure_is_reported_as_a_batch_item_failure() {
    let local = local().await;
    let mut config = local.config();
    config.dlq_url = None;
    let pipeline = Pipeline::new(S3Store::new(&local.sdk), config, 1);
    let body = serde_json::json!({"Records": [{"eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": local.input}, "object": {"key": "uploads/missing.jpg"}}}]});
    let event: SqsEvent = serde_json::from_value(serde_json::json!({"Records": [
        {"messageId": "m-1", "body": body.to_string()}]}))
    .unwrap();
    let no_dlq: Option<&SqsDeadLetters> = None;
    let response = lambda::handle(&pipeline, no_dlq, None::<&HandBack>, event, None).await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["m-1"]);
}

/// What `thumbs dlq redrive`'s snapshot and the function's copies rest on: a copy sent with
/// SendMessageBatch arrives with its attributes, and a received message's SentTimestamp is
/// read (a redrive moves only what was sent before it started).
#[tokio::test]
async fn copies_keep_their_attempts_and_received_messages_their_sent_time() {
    use thumbs::model::Resend;
    use thumbs::queue::{now_ms, Queue, SqsQueue};
    use thumbs::report::{Requeue, SqsRequeue};
    let local = local().await;
    let before = now_ms();
    let copy = Resend {
        body: "{\"Records\":[]}".into(),
        attempts: 2,
        solo: true,
        delay_seconds: 0,
    };
    let requeue = SqsRequeue::new(local.sqs.clone(), local.dlq_url.clone());
    let sent = requeue
        .resend_batch(&[&copy], std::time::Duration::from_secs(5))
        .await;
    assert_eq!(sent, [Ok(())]);
    let received = SqsQueue::new(local.sqs.clone())
        .receive(&local.dlq_url, 30, 2)
        .await
        .unwrap();
    assert_eq!(received.len(), 1);
    let m = &received[0];
    assert_eq!(m.body, copy.body);
    assert_eq!(m.attributes["ThumbsAttempts"], "2");
    assert_eq!(m.attributes["ThumbsSolo"], "true");
    // The emulator's clock is this machine's.
    assert!(
        m.sent_ms + 5_000 >= before && m.sent_ms <= now_ms() + 5_000,
        "{} vs {before}",
        m.sent_ms
    );
}

/// How the emulator answers the S3 semantics the manifest protocol relies on, each beside
/// what AWS documents and what the fake (`MemoryStore`) answers. Printed as a table (run with
/// `--nocapture`); asserted where the protocol needs one answer, recorded where AWS's
/// documents disagree (404 or 412 to `If-Match` on a missing key: both must mean "changed").
/// Sources: docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html,
/// .../API/API_PutObject.html (If-Match, If-None-Match: 412, 409 ConditionalRequestConflict),
/// .../userguide/DeletingObjectVersions.html, .../userguide/DeleteMarker.html.
#[tokio::test]
async fn s3_conditional_writes_and_versions_answer_as_aws_documents() {
    use thumbs::storage::{MemoryStore, MissingIfMatch, Precondition, PutObject};
    let local = local().await;
    let s3 = S3Store::new(&local.sdk);
    let fake = MemoryStore::default();
    let bucket = local.output.clone();
    let put = |key: &str, body: &[u8], precondition: Precondition| PutObject {
        bucket: bucket.clone(),
        key: key.into(),
        body: body.to_vec(),
        content_type: "application/json".into(),
        cache_control: String::new(),
        metadata: Default::default(),
        precondition,
    };
    let mut rows = Vec::new();
    let mut record = |what: &str, documented: &str, emulator: String, fake: String| {
        rows.push(format!("| {what} | {documented} | {emulator} | {fake} |"));
        (emulator, fake)
    };
    let answer = |r: Result<(), StorageError>| match r {
        Ok(()) => "200".to_string(),
        Err(StorageError::Changed(why)) => format!("changed ({why})"),
        Err(StorageError::NotFound) => "404".to_string(),
        Err(e) => format!("{e}"),
    };
    // If-None-Match: * over an object.
    s3.put(put("a", b"1", Precondition::None)).await.unwrap();
    fake.put(put("a", b"1", Precondition::None)).await.unwrap();
    let (e, f) = record(
        "If-None-Match: * over an object",
        "412 PreconditionFailed",
        answer(s3.put(put("a", b"2", Precondition::Absent)).await),
        answer(fake.put(put("a", b"2", Precondition::Absent)).await),
    );
    assert!(
        e.starts_with("changed") && f.starts_with("changed"),
        "{e} / {f}"
    );
    let (e, f) = record(
        "If-Match with another ETag",
        "412 PreconditionFailed",
        answer(
            s3.put(put("a", b"2", Precondition::Unchanged("0123".into())))
                .await,
        ),
        answer(
            fake.put(put("a", b"2", Precondition::Unchanged("0123".into())))
                .await,
        ),
    );
    assert!(
        e.starts_with("changed") && f.starts_with("changed"),
        "{e} / {f}"
    );
    *fake.missing_if_match.lock().unwrap() = MissingIfMatch::NotFound;
    let (e, f) = record(
        "If-Match on a key with no object",
        "404 (user guide); the API reference names only 412",
        answer(
            s3.put(put("none", b"1", Precondition::Unchanged("0123".into())))
                .await,
        ),
        answer(
            fake.put(put("none", b"1", Precondition::Unchanged("0123".into())))
                .await,
        ),
    );
    assert!(e == "404" || e.starts_with("changed"), "{e}");
    assert_eq!(f, "404");
    // Versions and delete markers, on a versioned bucket.
    local
        .s3
        .put_bucket_versioning()
        .bucket(&bucket)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    fake.enable_versioning(&bucket);
    let v1 = local
        .s3
        .put_object()
        .bucket(&bucket)
        .key("v")
        .body(b"one".to_vec().into())
        .send()
        .await
        .unwrap();
    let v2 = local
        .s3
        .put_object()
        .bucket(&bucket)
        .key("v")
        .body(b"two".to_vec().into())
        .send()
        .await
        .unwrap();
    let (fv1, fv2) = (
        fake.insert(&bucket, "v", b"one".to_vec()),
        fake.insert(&bucket, "v", b"two".to_vec()),
    );
    assert_ne!(v1.version_id(), v2.version_id());
    assert_ne!(fv1, fv2);
    s3.delete(&bucket, "v").await.unwrap();
    fake.delete(&bucket, "v").await.unwrap();
    let (e, f) = record(
        "HEAD after a delete marker",
        "404",
        format!("{:?}", s3.head(&bucket, "v").await.unwrap()),
        format!("{:?}", fake.head(&bucket, "v").await.unwrap()),
    );
    assert_eq!((e.as_str(), f.as_str()), ("None", "None"));
    let (e, f) = record(
        "If-None-Match: * over a delete marker",
        "200 (the condition applies to the current version only)",
        answer(s3.put(put("v", b"three", Precondition::Absent)).await),
        answer(fake.put(put("v", b"three", Precondition::Absent)).await),
    );
    assert_eq!(f, "200");
    let agrees_marker = e == "200";
    // Deleting the current version for good: the previous one is current again.
    let listed = local
        .s3
        .list_object_versions()
        .bucket(&bucket)
        .prefix("v")
        .send()
        .await
        .unwrap();
    let newest = listed
        .versions()
        .iter()
        .find(|v| v.is_latest() == Some(true))
        .and_then(|v| v.version_id().map(str::to_string));
    if let Some(newest) = newest {
        local
            .s3
            .delete_object()
            .bucket(&bucket)
            .key("v")
            .version_id(newest)
            .send()
            .await
            .unwrap();
    }
    let fake_newest = fake.versions(&bucket, "v").last().unwrap().0.clone();
    fake.delete_version(&bucket, "v", &fake_newest);
    let (e, f) = record(
        "HEAD after deleting the current version (v3 over a marker over v2)",
        "404: the delete marker is current again",
        format!("{:?}", s3.head(&bucket, "v").await.unwrap()),
        format!("{:?}", fake.head(&bucket, "v").await.unwrap()),
    );
    assert_eq!(f, "None");
    println!("| answer to | AWS documents | emulator | fake |\n| --- | --- | --- | --- |");
    for row in &rows {
        println!("{row}");
    }
    assert!(
        agrees_marker && e == "None",
        "the emulator differs from AWS's documents: {rows:#?}"
    );
}
