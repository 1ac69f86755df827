//! Fetch an original: refuse what is not ours or too large before downloading it.

use crate::config::PipelineConfig;
use crate::error::Failure;
use crate::notification::ObjectRef;
use crate::storage::{Fetched, ObjectStore};

pub async fn fetch<S: ObjectStore>(
    store: &S,
    object: &ObjectRef,
    config: &PipelineConfig,
) -> Result<Fetched, Failure> {
    // Never work outside the input prefix: that is how outputs could feed back as inputs.
    if !object.key.starts_with(&config.input_prefix) {
        return Err(Failure::permanent(
            "outside_prefix",
            format!(
                "key is outside INPUT_PREFIX `{}`: refusing to process it",
                config.input_prefix
            ),
        ));
    }
    let max = config.render.limits.max_bytes;
    if let Some(size) = object.size.filter(|&size| size > max) {
        return Err(Failure::permanent(
            "too_large",
            format!("the object is {size} bytes, over the limit of {max} bytes"),
        ));
    }
    Ok(store.get(object, max).await?)
}
