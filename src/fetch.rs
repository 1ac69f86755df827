//! Fetch an original, refusing one that is too large before downloading it.

use crate::config::PipelineConfig;
use crate::model::{Failure, ObjectRef};
use crate::storage::{Fetched, ObjectStore, StorageError};

/// `Ok(None)`: the key no longer holds the upload the event announced (it was overwritten);
/// the newer upload's own event renders it. The size in the event is not trusted: S3's answer
/// is checked before the body is read.
pub async fn fetch<S: ObjectStore>(
    store: &S,
    object: &ObjectRef,
    config: &PipelineConfig,
) -> Result<Option<Fetched>, Failure> {
    match store.get(object, config.render.limits.max_bytes).await {
        Ok(fetched) => Ok(Some(fetched)),
        Err(StorageError::Changed(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
