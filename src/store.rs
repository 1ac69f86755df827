//! Where outputs go and how renditions are written. Renditions are named by a digest of their
//! source, the upload (its event's sequencer, its version) and the settings, so they never
//! change once written and can be cached for a year; `manifest.json` keeps its name and is
//! revalidated by caches. When a manifest is written,
//! replaced or removed is the protocol's business (`crate::outputs`).

use std::collections::{BTreeMap, HashMap};

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

use crate::config::{OutputLayout, PipelineConfig};
use crate::model::{Failure, ObjectRef, RenderSettings, Rendered};
use crate::storage::{
    Fetched, ObjectStore, Precondition, PutObject, MAX_KEY_BYTES, MAX_METADATA_BYTES,
};

/// Metadata travels as HTTP headers: keep values ASCII by percent-encoding the rest.
const METADATA_UNSAFE: &AsciiSet = &CONTROLS.add(b'%');

const MANIFEST: &str = "manifest.json";

/// A digest of everything in the settings that changes the renditions.
pub fn settings_fingerprint(settings: &RenderSettings) -> String {
    crate::digest::hex(
        format!(
            "{:?}|{:?}|{:?}|{:?}",
            settings.presets, settings.formats, settings.quality, settings.strategy
        )
        .as_bytes(),
    )
}

/// The fingerprint of the settings of the rule `key` follows: changing one rule changes
/// only its keys' fingerprints, so only they render again.
pub fn fingerprint_for(config: &PipelineConfig, key: &str) -> String {
    settings_fingerprint(config.rule_for(key).settings)
}

/// Where one original's outputs go: `OUTPUT_PREFIX` + the key below `INPUT_PREFIX` + `/`,
/// with the bucket's name in front in the `bucket` layout.
pub fn output_folder(config: &PipelineConfig, bucket: &str, key: &str) -> String {
    let relative = key.strip_prefix(&config.input_prefix).unwrap_or(key);
    match config.output_layout {
        OutputLayout::Key => format!("{}{relative}/", config.output_prefix),
        OutputLayout::Bucket => format!("{}{bucket}/{relative}/", config.output_prefix),
    }
}

/// The manifest's key for an original.
pub fn manifest_key(config: &PipelineConfig, bucket: &str, key: &str) -> String {
    format!("{}{MANIFEST}", output_folder(config, bucket, key))
}

/// A rendition's name: `<preset>.<digest of source ETag, upload and settings>.<ext>`.
fn rendition_key(folder: &str, preset: &str, extension: &str, tag: &str) -> String {
    format!("{folder}{preset}.{tag}.{extension}")
}

/// Every rendition name the settings of the key's rule make for one upload of `object` whose
/// ETag is `etag`: what a delivery of it writes, or wrote before it was interrupted.
pub fn rendition_keys(
    config: &PipelineConfig,
    object: &ObjectRef,
    etag: &str,
    fingerprint: &str,
) -> Vec<String> {
    let tag = content_tag(etag, object, fingerprint);
    let folder = output_folder(config, &object.bucket, &object.key);
    let render = config.rule_for(&object.key).settings;
    render
        .presets
        .iter()
        .flat_map(|p| {
            render
                .formats
                .iter()
                .map(|f| rendition_key(&folder, &p.name, f.extension(), &tag))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The digest in rendition names: a new upload or new settings give new names, even for the
/// same bytes. The upload is told apart by its event's sequencer (S3 gives each upload of a
/// key its own) and version id, so that a clean-up of an earlier upload's renditions (a
/// replaced manifest's `obsolete`) can never delete what a re-upload of the same bytes
/// (A-B-A) is writing: S3 has no conditional DELETE to guard names shared by both. What has
/// neither (backfill of an unversioned bucket) is named by bytes and settings alone.
pub fn content_tag(source_etag: &str, object: &ObjectRef, fingerprint: &str) -> String {
    let sequencer = object.sequencer.as_deref().unwrap_or_default();
    let version = object.version_id.as_deref().unwrap_or_default();
    crate::digest::hex(format!("{source_etag}|{sequencer}|{version}|{fingerprint}").as_bytes())
}

/// Refuse, before anything is fetched or written, an original whose output keys would be
/// longer than S3 allows: otherwise some renditions would be written and then the rest fail.
/// The names are those of the key's rule.
pub fn check_key_length(config: &PipelineConfig, object: &ObjectRef) -> Result<(), Failure> {
    let folder = output_folder(config, &object.bucket, &object.key);
    let tag_len = content_tag("", object, "").len();
    let render = config.rule_for(&object.key).settings;
    let longest_name = render
        .presets
        .iter()
        .flat_map(|p| {
            render
                .formats
                .iter()
                .map(move |f| p.name.len() + tag_len + f.extension().len() + 2)
        })
        .chain([MANIFEST.len()])
        .max()
        .unwrap_or(0);
    let longest = folder.len() + longest_name;
    if longest > MAX_KEY_BYTES {
        return Err(Failure::permanent(
            "key_too_long",
            format!(
                "the thumbnails' keys would be {longest} bytes, over S3's limit of {MAX_KEY_BYTES}: \
                 shorten the upload's key by {} bytes",
                longest - MAX_KEY_BYTES
            ),
        ));
    }
    Ok(())
}

/// `source-key` and friends as S3 user metadata, leaving out `source-key` when it would not
/// fit S3's 2 KB (the manifest names the source anyway).
fn metadata(object: &ObjectRef, fetched: &Fetched) -> BTreeMap<String, String> {
    let mut metadata = BTreeMap::new();
    if let Some(etag) = &fetched.etag {
        metadata.insert("source-etag".to_string(), etag.clone());
    }
    if let Some(version) = &fetched.version_id {
        metadata.insert("source-version-id".to_string(), version.clone());
    }
    let key = utf8_percent_encode(&object.key, METADATA_UNSAFE).to_string();
    let used: usize = metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
    if used + "source-key".len() + key.len() <= MAX_METADATA_BYTES {
        metadata.insert("source-key".to_string(), key);
    }
    metadata
}

/// Write every rendition of `rendered`; returns each one's key by file name (`thumb.webp`).
/// The tag in the names comes from the source's ETag (or, when S3 gave none, the bytes made).
pub async fn put_renditions<S: ObjectStore>(
    store: &S,
    config: &PipelineConfig,
    object: &ObjectRef,
    fetched: &Fetched,
    rendered: &Rendered,
    fingerprint: &str,
) -> Result<HashMap<String, String>, Failure> {
    let folder = output_folder(config, &object.bucket, &object.key);
    let etag = fetched.etag.clone().unwrap_or_else(|| {
        rendered
            .renditions
            .iter()
            .map(|r| crate::digest::hex(&r.bytes))
            .collect()
    });
    let tag = content_tag(&etag, object, fingerprint);
    let metadata = metadata(object, fetched);
    let mut keys = HashMap::new();
    for rendition in &rendered.renditions {
        let key = rendition_key(
            &folder,
            &rendition.preset,
            rendition.format.extension(),
            &tag,
        );
        store
            .put(PutObject {
                bucket: config.output_bucket.clone(),
                key: key.clone(),
                body: rendition.bytes.clone(),
                content_type: rendition.format.content_type().to_string(),
                cache_control: config.cache_control.clone(),
                metadata: metadata.clone(),
                precondition: Precondition::None,
            })
            .await?;
        keys.insert(rendition.file_name(), key);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Env;

    fn config(buckets: &str) -> PipelineConfig {
        with_layout(buckets, "key")
    }

    fn with_layout(buckets: &str, layout: &str) -> PipelineConfig {
        PipelineConfig::from_env(&Env::from_pairs([
            ("OUTPUT_BUCKET", "out"),
            ("INPUT_BUCKETS", buckets),
            ("OUTPUT_LAYOUT", layout),
        ]))
        .unwrap()
    }

    fn object(key: &str) -> ObjectRef {
        ObjectRef {
            bucket: "in".into(),
            key: key.into(),
            size: None,
            etag: None,
            version_id: None,
            sequencer: None,
        }
    }

    #[test]
    fn output_folder_mirrors_the_key_below_the_input_prefix() {
        assert_eq!(
            output_folder(&config("in"), "in", "uploads/a/b c.jpg"),
            "thumbnails/a/b c.jpg/"
        );
    }

    #[test]
    fn the_bucket_layout_gives_each_bucket_a_folder_and_adding_one_moves_nothing() {
        let one = with_layout("in", "bucket");
        let two = with_layout("in,other", "bucket");
        assert_eq!(
            output_folder(&one, "in", "uploads/a.jpg"),
            "thumbnails/in/a.jpg/"
        );
        assert_eq!(
            output_folder(&two, "in", "uploads/a.jpg"),
            output_folder(&one, "in", "uploads/a.jpg")
        );
        assert_eq!(
            output_folder(&two, "other", "uploads/a.jpg"),
            "thumbnails/other/a.jpg/"
        );
    }

    #[test]
    fn keys_whose_outputs_would_pass_s3s_limit_are_refused_up_front() {
        let config = config("in");
        // 1,000 bytes is a legal input key; its outputs are longer.
        let long = format!("uploads/{}", "k".repeat(1000 - 8));
        let err = check_key_length(&config, &object(&long)).unwrap_err();
        assert_eq!(err.kind, "key_too_long");
        assert!(!err.retryable);
        assert!(check_key_length(&config, &object("uploads/a.jpg")).is_ok());
    }

    #[test]
    fn source_key_metadata_is_left_out_when_it_would_pass_2kb() {
        let fetched = Fetched {
            bytes: vec![],
            etag: Some("e".into()),
            version_id: None,
        };
        // 230 CJK characters: a 698-byte key, 2,078 bytes percent-encoded.
        let long = format!("uploads/{}", "写".repeat(230));
        let md = metadata(&object(&long), &fetched);
        assert!(!md.contains_key("source-key"));
        assert_eq!(md["source-etag"], "e");
        let short = metadata(&object("uploads/café.jpg"), &fetched);
        assert_eq!(short["source-key"], "uploads/caf%C3%A9.jpg");
    }

    #[test]
    fn names_key_length_and_fingerprint_follow_the_keys_rule() {
        let config = PipelineConfig::from_env(&Env::from_pairs([
            ("OUTPUT_BUCKET", "out"),
            ("INPUT_BUCKETS", "in"),
            (
                "THUMBS_RULES",
                "avatars=uploads/avatars/ presets=s64=64x64:cover formats=webp,jpeg",
            ),
        ]))
        .unwrap();
        let avatar = object("uploads/avatars/me.png");
        let fp = fingerprint_for(&config, &avatar.key);
        let keys = rendition_keys(&config, &avatar, "e", &fp);
        let tag = content_tag("e", &avatar, &fp);
        assert_eq!(
            keys,
            [
                format!("thumbnails/avatars/me.png/s64.{tag}.webp"),
                format!("thumbnails/avatars/me.png/s64.{tag}.jpg"),
            ]
        );
        let other = object("uploads/me.png");
        assert_eq!(rendition_keys(&config, &other, "e", "f").len(), 3);
        assert_ne!(fingerprint_for(&config, &other.key), fp);
        assert_eq!(
            fingerprint_for(&config, &other.key),
            settings_fingerprint(&RenderSettings::default()),
            "keys no rule names keep the fingerprint they had before rules existed"
        );
        // `large` (5 bytes) is longer than `s64`: a key that fits under the avatars rule is
        // too long under the default rule.
        let fits = |key: String| check_key_length(&config, &object(&key)).is_ok();
        let room = MAX_KEY_BYTES - "thumbnails/".len() - 16 - "s64..webp".len();
        let name = "k".repeat(room - "avatars/".len() - 1);
        assert!(fits(format!("uploads/avatars/{name}")));
        assert!(!fits(format!("uploads/othersx/{name}")));
    }
}
