//! SQS message body -> the objects it announces.
//!
//! Parsed loosely on purpose: real S3 sends `userIdentity`, `requestParameters` and friends,
//! moto and LocalStack leave some out, so we read only the fields we use. Handles every record
//! of a message, `s3:TestEvent` (sent when a notification is configured) and S3 events wrapped
//! in an SNS envelope (S3 -> SNS -> SQS fan-out).

use percent_encoding::percent_decode_str;
use serde_json::Value;

use crate::model::ObjectRef;

/// One record of a notification.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// An object was created: work to do. `raw` is the record as received, kept so a failure
    /// can be dead-lettered as a message that a redrive replays for just this object.
    Created { object: ObjectRef, raw: Value },
    /// An object was deleted (`ObjectRemoved:*`), or expired by a lifecycle rule
    /// (`LifecycleExpiration:Delete`, `:DeleteMarkerCreated`): its outputs go too when
    /// `SYNC_DELETES` is on, unless the key still holds what they describe.
    Removed { object: ObjectRef, raw: Value },
    /// Another S3 event type (restores, replication, tagging...): nothing to do.
    Ignored { event: String },
    /// A record we cannot use (no bucket, a key that does not decode).
    Invalid { reason: String, raw: Value },
}

/// What an SQS message body holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Notification {
    /// S3's test message, sent when the notification is configured: acknowledge and skip.
    TestEvent,
    Records(Vec<Record>),
}

/// The body is not an S3 notification at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an S3 event notification: {0}")]
pub struct MalformedBody(pub String);

/// Decode an S3 event key: `+` means a space, then `%XX` escapes (UTF-8).
pub fn decode_key(raw: &str) -> Result<String, String> {
    percent_decode_str(&raw.replace('+', " "))
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|_| format!("key `{raw}` does not decode to UTF-8"))
}

/// Parse one SQS message body.
pub fn parse(body: &str) -> Result<Notification, MalformedBody> {
    let value: Value =
        serde_json::from_str(body).map_err(|e| MalformedBody(format!("invalid JSON ({e})")))?;
    parse_value(&value, true)
}

fn parse_value(value: &Value, allow_envelope: bool) -> Result<Notification, MalformedBody> {
    // Records first: a body that also says TestEvent still has its records handled.
    if let Some(records) = value.get("Records") {
        let records = records
            .as_array()
            .ok_or_else(|| MalformedBody("`Records` is not a list".into()))?;
        // A record repeated in one message is one upload: one render, at most one dead letter.
        let mut unique: Vec<&Value> = Vec::with_capacity(records.len());
        for record in records {
            if !unique.contains(&record) {
                unique.push(record);
            }
        }
        return Ok(Notification::Records(
            unique.into_iter().map(parse_record).collect(),
        ));
    }
    if value.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Notification::TestEvent);
    }
    // SNS envelope: the S3 event is a JSON string in `Message`.
    if allow_envelope && value.get("Type").and_then(Value::as_str) == Some("Notification") {
        if let Some(inner) = value.get("Message").and_then(Value::as_str) {
            let inner: Value = serde_json::from_str(inner)
                .map_err(|e| MalformedBody(format!("SNS message is not JSON ({e})")))?;
            return parse_value(&inner, false);
        }
    }
    Err(MalformedBody("no `Records` list".into()))
}

/// S3 event families that carry no work for us; anything else unknown is dead-lettered, so
/// nothing is acknowledged that we did not understand.
const OTHER_S3_EVENTS: &[&str] = &[
    "ObjectRestore:",
    "Replication:",
    "LifecycleTransition",
    "IntelligentTiering",
    "ObjectTagging:",
    "ObjectAcl:",
    "ReducedRedundancyLostObject",
];

fn parse_record(raw: &Value) -> Record {
    let invalid = |reason: String| Record::Invalid {
        reason,
        raw: raw.clone(),
    };
    if !raw.is_object() {
        return invalid("record is not a JSON object".into());
    }
    let Some(event) = raw.get("eventName").and_then(Value::as_str) else {
        return invalid("record has no eventName".into());
    };
    // S3 names them "ObjectCreated:Put"; some emulators drop the "s3:" or keep it.
    let name = event.trim_start_matches("s3:");
    let created = name.starts_with("ObjectCreated:");
    let removed = name.starts_with("ObjectRemoved:") || name.starts_with("LifecycleExpiration:");
    if !created && !removed {
        return if OTHER_S3_EVENTS.iter().any(|p| name.starts_with(p)) {
            Record::Ignored {
                event: event.to_string(),
            }
        } else {
            invalid(format!("unknown event type `{event}`"))
        };
    }
    let s3 = &raw["s3"];
    let Some(bucket) = s3["bucket"]["name"].as_str().filter(|b| !b.is_empty()) else {
        return invalid("record has no s3.bucket.name".into());
    };
    let Some(raw_key) = s3["object"]["key"].as_str().filter(|k| !k.is_empty()) else {
        return invalid("record has no s3.object.key".into());
    };
    let key = match decode_key(raw_key) {
        Ok(key) => key,
        Err(reason) => return invalid(reason),
    };
    let text = |v: &Value| {
        v.as_str()
            .map(|s| s.trim_matches('"'))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let object = ObjectRef {
        bucket: bucket.to_string(),
        key,
        size: s3["object"]["size"].as_u64(),
        etag: text(&s3["object"]["eTag"]),
        version_id: text(&s3["object"]["versionId"]),
        sequencer: text(&s3["object"]["sequencer"]),
    };
    let raw = raw.clone();
    if created {
        Record::Created { object, raw }
    } else {
        Record::Removed { object, raw }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/events/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn created(n: &Notification) -> Vec<ObjectRef> {
        match n {
            Notification::Records(records) => records
                .iter()
                .filter_map(|r| match r {
                    Record::Created { object, .. } => Some(object.clone()),
                    _ => None,
                })
                .collect(),
            Notification::TestEvent => vec![],
        }
    }

    #[test]
    fn keys_decode_plus_as_space_then_percent_escapes() {
        assert_eq!(
            decode_key("uploads/my+photo.jpg").unwrap(),
            "uploads/my photo.jpg"
        );
        assert_eq!(decode_key("uploads/a%2Bb.jpg").unwrap(), "uploads/a+b.jpg");
        assert_eq!(
            decode_key("uploads%2Fnested%2Fx.jpg").unwrap(),
            "uploads/nested/x.jpg"
        );
        assert_eq!(
            decode_key("uploads/caf%C3%A9+%E5%86%99%E7%9C%9F.jpg").unwrap(),
            "uploads/café 写真.jpg"
        );
        assert!(decode_key("uploads/%FF.jpg").is_err());
    }

    #[test]
    fn real_s3_put_event_gives_one_object_with_decoded_key() {
        let n = parse(&fixture("s3-put.json")).unwrap();
        let objects = created(&n);
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].bucket, "thumbs-demo-input");
        assert_eq!(objects[0].key, "uploads/holiday photos/beach day+1.jpg");
        assert_eq!(objects[0].size, Some(1024));
        assert_eq!(
            objects[0].etag.as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
        assert_eq!(objects[0].sequencer.as_deref(), Some("0055AED6DCD90281E5"));
    }

    #[test]
    fn moto_body_without_user_identity_parses() {
        let objects = created(&parse(&fixture("moto-put.json")).unwrap());
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].key, "uploads/nested/a b.jpg");
    }

    #[test]
    fn every_record_of_a_message_is_returned() {
        let objects = created(&parse(&fixture("s3-multi-record.json")).unwrap());
        let keys: Vec<_> = objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(
            keys,
            ["uploads/one.jpg", "uploads/two.png", "uploads/three.heic"]
        );
    }

    #[test]
    fn test_event_is_recognised() {
        assert_eq!(
            parse(&fixture("s3-test-event.json")).unwrap(),
            Notification::TestEvent
        );
    }

    #[test]
    fn removal_events_name_the_deleted_object() {
        let n = parse(&fixture("s3-delete.json")).unwrap();
        assert!(
            matches!(&n, Notification::Records(r) if matches!(r[..], [Record::Removed { .. }]))
        );
    }

    fn records(body: &str) -> Vec<Record> {
        match parse(body).unwrap() {
            Notification::Records(records) => records,
            Notification::TestEvent => panic!("records expected in {body}"),
        }
    }

    #[test]
    fn records_we_cannot_understand_are_invalid_never_silently_skipped() {
        let body = r#"{"Records":[{"s3":{}}, {"eventName":null}, {"eventName":"Bogus:Thing"},
            [1], "text", {"eventName":"ObjectRestore:Completed"}]}"#;
        let kinds: Vec<&str> = records(body)
            .iter()
            .map(|r| match r {
                Record::Invalid { .. } => "invalid",
                Record::Ignored { .. } => "ignored",
                _ => "other",
            })
            .collect();
        assert_eq!(
            kinds,
            ["invalid", "invalid", "invalid", "invalid", "invalid", "ignored"]
        );
    }

    #[test]
    fn lifecycle_expirations_are_deletions() {
        for event in [
            "LifecycleExpiration:Delete",
            "LifecycleExpiration:DeleteMarkerCreated",
        ] {
            let body = format!(
                r#"{{"Records":[{{"eventName":"{event}","s3":{{"bucket":{{"name":"b"}},"object":{{"key":"uploads/x.jpg"}}}}}}]}}"#
            );
            assert!(
                matches!(records(&body)[..], [Record::Removed { .. }]),
                "{event}"
            );
        }
    }

    #[test]
    fn a_test_event_that_carries_records_has_them_handled() {
        let body = r#"{"Event":"s3:TestEvent","Records":[{"eventName":"ObjectCreated:Put",
            "s3":{"bucket":{"name":"b"},"object":{"key":"uploads/x.jpg"}}}]}"#;
        assert!(matches!(records(body)[..], [Record::Created { .. }]));
    }

    #[test]
    fn a_record_repeated_in_one_message_counts_once() {
        let record = r#"{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"uploads/x.jpg"}}}"#;
        let body = format!(r#"{{"Records":[{record},{record}]}}"#);
        assert_eq!(records(&body).len(), 1);
    }

    #[test]
    fn sns_wrapped_events_are_unwrapped() {
        let objects = created(&parse(&fixture("sns-wrapped-put.json")).unwrap());
        assert_eq!(objects[0].key, "uploads/from sns.jpg");
    }

    #[test]
    fn bodies_that_are_not_s3_events_are_malformed() {
        for body in [
            "",
            "not json",
            "{}",
            r#"{"Records": 3}"#,
            "[1,2]",
            r#"{"hello":"world"}"#,
        ] {
            assert!(parse(body).is_err(), "{body:?}");
        }
    }

    #[test]
    fn records_without_bucket_or_key_are_invalid_not_fatal() {
        let body = r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"object":{"key":"uploads/x.jpg"}}},
            {"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"uploads/ok.jpg"}}}]}"#;
        let Notification::Records(records) = parse(body).unwrap() else {
            panic!("records expected")
        };
        assert!(matches!(records[0], Record::Invalid { .. }));
        assert!(matches!(records[1], Record::Created { .. }));
    }
}
