//! Fetch an original, refusing one that is too large before downloading it.

use crate::config::PipelineConfig;
use crate::model::{Failure, ObjectRef};
use crate::storage::{Fetched, ObjectStore, StorageError};

/// What the key holds, against what the event announced.
#[derive(Debug)]
pub enum Fetch {
    Got(Fetched),
    /// The key holds a newer upload now; its own event renders it.
    Overwritten,
    /// The key holds nothing: the upload was deleted before it was processed.
    Deleted,
}

/// The size in the event is not trusted: S3's answer is checked before the body is read.
pub async fn fetch<S: ObjectStore>(
    store: &S,
    object: &ObjectRef,
    config: &PipelineConfig,
) -> Result<Fetch, Failure> {
    match store.get(object, config.render.limits.max_bytes).await {
        Ok(fetched) => Ok(Fetch::Got(fetched)),
        Err(StorageError::Changed(_)) => Ok(Fetch::Overwritten),
        Err(StorageError::NotFound) => Ok(Fetch::Deleted),
        Err(e) => Err(e.into()),
    }
}
