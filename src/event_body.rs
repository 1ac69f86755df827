//! S3-shaped `ObjectCreated` message bodies for objects S3 never announced to us: originals
//! that were in the bucket before the notification existed (backfill) and S3 Batch Operations
//! tasks. The pipeline then takes them through the same parser and the same code as an upload.

use std::time::{SystemTime, UNIX_EPOCH};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Map, Value};

use crate::model::ObjectRef;

/// What S3 leaves unescaped in event keys: unreserved characters and `/`. A space becomes
/// `+` (below), so a literal `+` must be escaped: it is not in this list.
const KEY_ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// Encode a key the way S3 writes it into an event: `%XX` escapes, a space as `+`.
pub fn encode_key(key: &str) -> String {
    // `%` itself is escaped to `%25`, so no `%20` below can come from the key's own text.
    utf8_percent_encode(key, KEY_ESCAPED)
        .to_string()
        .replace("%20", "+")
}

/// `{"Records":[<one ObjectCreated record>]}` for `object`, as S3 would send it.
/// `origin` names who announced it (`configurationId`, `principalId`), so a log or a dead
/// letter shows that S3 did not.
pub fn object_created(object: &ObjectRef, origin: &str, region: Option<&str>) -> String {
    let mut s3_object = Map::new();
    s3_object.insert("key".into(), encode_key(&object.key).into());
    if let Some(size) = object.size {
        s3_object.insert("size".into(), size.into());
    }
    if let Some(etag) = &object.etag {
        s3_object.insert("eTag".into(), etag.trim_matches('"').into());
    }
    if let Some(version) = &object.version_id {
        s3_object.insert("versionId".into(), version.as_str().into());
    }
    json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region.unwrap_or("us-east-1"),
        "eventTime": rfc3339(SystemTime::now()),
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": origin},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": origin,
            "bucket": {
                "name": object.bucket,
                "ownerIdentity": {"principalId": origin},
                "arn": format!("arn:aws:s3:::{}", object.bucket),
            },
            "object": Value::Object(s3_object),
        },
    }]})
    .to_string()
}

/// `2026-11-30T05:00:00.000Z`, the format of S3's `eventTime`.
fn rfc3339(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::notification::{decode_key, parse, Notification, Record};

    #[test]
    fn encoded_keys_decode_back_to_the_same_key() {
        for key in [
            "uploads/plain.jpg",
            "uploads/holiday photos/beach day+1.jpg",
            "uploads/100%.png",
            "uploads/café 写真 &=?#.jpg",
            "uploads/%20 literal.jpg",
        ] {
            assert_eq!(decode_key(&encode_key(key)).unwrap(), key, "{key}");
        }
        assert_eq!(encode_key("uploads/a b+c.jpg"), "uploads/a+b%2Bc.jpg");
    }

    #[test]
    fn the_body_parses_as_one_created_record_with_size_and_etag() {
        let object = ObjectRef {
            bucket: "in".into(),
            key: "uploads/a b.jpg".into(),
            size: Some(1234),
            etag: Some("\"abc\"".into()),
            version_id: Some("v1".into()),
            sequencer: None,
        };
        let body = object_created(&object, "thumbs-backfill", Some("eu-west-1"));
        let Notification::Records(records) = parse(&body).unwrap() else {
            panic!("records expected")
        };
        let [Record::Created {
            object: parsed,
            raw,
        }] = &records[..]
        else {
            panic!("one created record expected: {records:?}")
        };
        assert_eq!(parsed.key, "uploads/a b.jpg");
        assert_eq!(parsed.size, Some(1234));
        assert_eq!(parsed.etag.as_deref(), Some("abc"));
        assert_eq!(parsed.version_id.as_deref(), Some("v1"));
        assert_eq!(raw["s3"]["configurationId"], "thumbs-backfill");
        assert_eq!(raw["awsRegion"], "eu-west-1");
    }

    #[test]
    fn event_time_is_rfc3339_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let at = UNIX_EPOCH + Duration::from_millis(1_796_014_861_042);
        assert_eq!(rfc3339(at), "2026-11-30T05:01:01.042Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }
}
