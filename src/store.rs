//! Store renditions and the manifest: deterministic keys, so a duplicate delivery rewrites
//! the same objects and nothing else.

use std::collections::BTreeMap;

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

use crate::config::PipelineConfig;
use crate::error::Failure;
use crate::notification::ObjectRef;
use crate::render::{Manifest, ManifestSource, Rendered};
use crate::storage::{Fetched, ObjectStore, PutObject};

/// Metadata travels as HTTP headers: keep values ASCII by percent-encoding the rest.
const METADATA_UNSAFE: &AsciiSet = &CONTROLS.add(b'%');

/// `OUTPUT_PREFIX` + the key below `INPUT_PREFIX` + `/`: the folder of one original's outputs.
pub fn output_folder(config: &PipelineConfig, key: &str) -> String {
    let relative = key.strip_prefix(&config.input_prefix).unwrap_or(key);
    format!("{}{}/", config.output_prefix, relative)
}

/// Write every rendition, then `manifest.json` last: its presence means the set is complete.
/// Returns the manifest written.
pub async fn store<S: ObjectStore>(
    store: &S,
    config: &PipelineConfig,
    object: &ObjectRef,
    fetched: &Fetched,
    rendered: &Rendered,
) -> Result<Manifest, Failure> {
    let folder = output_folder(config, &object.key);
    let mut metadata = BTreeMap::new();
    metadata.insert(
        "source-key".to_string(),
        utf8_percent_encode(&object.key, METADATA_UNSAFE).to_string(),
    );
    if let Some(etag) = &fetched.etag {
        metadata.insert("source-etag".to_string(), etag.clone());
    }
    if let Some(version) = &fetched.version_id {
        metadata.insert("source-version-id".to_string(), version.clone());
    }
    let put = |key: String, body: Vec<u8>, content_type: &str| PutObject {
        bucket: config.output_bucket.clone(),
        key,
        body,
        content_type: content_type.to_string(),
        cache_control: config.cache_control.clone(),
        metadata: metadata.clone(),
    };
    for rendition in &rendered.renditions {
        let key = format!("{folder}{}", rendition.file_name());
        store
            .put(put(
                key,
                rendition.bytes.clone(),
                rendition.format.content_type(),
            ))
            .await?;
    }
    let origin = ManifestSource {
        bucket: Some(object.bucket.clone()),
        key: Some(object.key.clone()),
        etag: fetched.etag.clone(),
        version_id: fetched.version_id.clone(),
        ..Default::default()
    };
    let manifest = Manifest::new(rendered, origin, |r| format!("{folder}{}", r.file_name()));
    store
        .put(put(
            format!("{folder}manifest.json"),
            manifest.to_json(),
            "application/json",
        ))
        .await?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Env;

    #[test]
    fn output_folder_mirrors_the_key_below_the_input_prefix() {
        let config =
            PipelineConfig::from_env(&Env::from_pairs([("OUTPUT_BUCKET", "out")])).unwrap();
        assert_eq!(
            output_folder(&config, "uploads/a/b c.jpg"),
            "thumbnails/a/b c.jpg/"
        );
    }

    #[test]
    fn metadata_encoding_keeps_ascii_and_escapes_the_rest() {
        let encoded = utf8_percent_encode("uploads/café 1%.jpg", METADATA_UNSAFE).to_string();
        assert_eq!(encoded, "uploads/caf%C3%A9 1%25.jpg");
    }
}
