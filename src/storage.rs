//! Where originals are read from and renditions written to: a small trait, its S3
//! implementation, and an in-memory fake for tests.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::notification::ObjectRef;

/// Why a storage call failed, split by what a retry can do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    #[error("no such object")]
    NotFound,
    #[error("access denied: {0}")]
    AccessDenied(String),
    #[error("the object is {bytes} bytes, over the limit of {max} bytes")]
    TooLarge { bytes: u64, max: u64 },
    /// Throttling, 5xx, timeouts, connection errors: worth another try later.
    #[error("temporary storage failure: {0}")]
    Transient(String),
    #[error("storage failure: {0}")]
    Other(String),
}

impl StorageError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, StorageError::Transient(_))
    }
}

/// An original, downloaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub etag: Option<String>,
    pub version_id: Option<String>,
}

/// An object to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutObject {
    pub bucket: String,
    pub key: String,
    pub body: Vec<u8>,
    pub content_type: String,
    pub cache_control: String,
    pub metadata: BTreeMap<String, String>,
}

/// The two calls the pipeline needs.
pub trait ObjectStore: Send + Sync + 'static {
    /// Download an object, refusing (before or while downloading) one over `max_bytes`.
    fn get(
        &self,
        object: &ObjectRef,
        max_bytes: u64,
    ) -> impl Future<Output = Result<Fetched, StorageError>> + Send;

    fn put(&self, object: PutObject) -> impl Future<Output = Result<(), StorageError>> + Send;
}

/// An object as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub size: u64,
    /// Without the quotes S3 puts around it.
    pub etag: Option<String>,
}

/// One page of a listing, and where the next one starts (`None`: the last page).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListPage {
    pub objects: Vec<Listed>,
    pub next: Option<String>,
}

/// Listing a bucket in key order, a page at a time (backfill).
pub trait ObjectLister: Send + Sync + 'static {
    /// Keys under `prefix`, after `start_after`, from `continuation` (a previous page's `next`).
    fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: Option<&str>,
        continuation: Option<&str>,
        max_keys: i32,
    ) -> impl Future<Output = Result<ListPage, StorageError>> + Send;
}

/// S3 through the AWS SDK. Endpoints come from the standard variables (`AWS_ENDPOINT_URL`...).
#[derive(Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
}

impl S3Store {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        // Path-style addressing when pointed at a local endpoint: virtual-host style would
        // need DNS for `<bucket>.localhost`.
        let local = std::env::var_os("AWS_ENDPOINT_URL").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        let s3 = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(local)
            .build();
        S3Store {
            client: aws_sdk_s3::Client::from_conf(s3),
        }
    }
}

/// Classify an SDK error by what a retry could change.
fn classify<E>(err: SdkError<E, HttpResponse>) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &err {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or("");
            let message = service.err().message().unwrap_or("");
            let text = format!("{code} {message} (HTTP {status})")
                .trim()
                .to_string();
            match (status, code) {
                (404, _) | (_, "NoSuchKey" | "NotFound") => StorageError::NotFound,
                (403, _) => StorageError::AccessDenied(text),
                (408 | 429 | 500..=599, _) | (_, "SlowDown") => StorageError::Transient(text),
                _ => StorageError::Other(text),
            }
        }
        // Timeouts, connection failures, truncated responses: transient by nature.
        _ => StorageError::Transient(DisplayErrorContext(&err).to_string()),
    }
}

impl ObjectStore for S3Store {
    async fn get(&self, object: &ObjectRef, max_bytes: u64) -> Result<Fetched, StorageError> {
        let mut request = self
            .client
            .get_object()
            .bucket(&object.bucket)
            .key(&object.key);
        if let Some(version) = &object.version_id {
            request = request.version_id(version);
        }
        let response = request.send().await.map_err(classify)?;
        // Refuse before reading the body when the size is announced...
        let announced = response.content_length().unwrap_or(0).max(0) as u64;
        if announced > max_bytes {
            return Err(StorageError::TooLarge {
                bytes: announced,
                max: max_bytes,
            });
        }
        let etag = response.e_tag().map(|e| e.trim_matches('"').to_string());
        let version_id = response.version_id().map(str::to_string);
        // ...and while reading it, in case it is not.
        let mut body = response.body;
        let mut bytes = Vec::with_capacity(announced as usize);
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| StorageError::Transient(format!("reading the body: {e}")))?
        {
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > max_bytes {
                return Err(StorageError::TooLarge {
                    bytes: bytes.len() as u64,
                    max: max_bytes,
                });
            }
        }
        Ok(Fetched {
            bytes,
            etag,
            version_id,
        })
    }

    async fn put(&self, object: PutObject) -> Result<(), StorageError> {
        let mut request = self
            .client
            .put_object()
            .bucket(object.bucket)
            .key(object.key)
            .content_type(object.content_type)
            .cache_control(object.cache_control)
            .body(object.body.into());
        for (name, value) in object.metadata {
            request = request.metadata(name, value);
        }
        request.send().await.map_err(classify)?;
        Ok(())
    }
}

impl ObjectLister for S3Store {
    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: Option<&str>,
        continuation: Option<&str>,
        max_keys: i32,
    ) -> Result<ListPage, StorageError> {
        let response = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_start_after(start_after.map(str::to_string))
            .set_continuation_token(continuation.map(str::to_string))
            .max_keys(max_keys)
            .send()
            .await
            .map_err(classify)?;
        let objects = response
            .contents()
            .iter()
            .filter_map(|o| {
                Some(Listed {
                    key: o.key()?.to_string(),
                    size: o.size().unwrap_or(0).max(0) as u64,
                    etag: o.e_tag().map(|e| e.trim_matches('"').to_string()),
                })
            })
            .collect();
        let next = if response.is_truncated() == Some(true) {
            response.next_continuation_token().map(str::to_string)
        } else {
            None
        };
        Ok(ListPage { objects, next })
    }
}

/// An in-memory store for tests: objects by (bucket, key), with optional injected failures.
#[derive(Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<(String, String), PutObject>>,
    failures: Mutex<Vec<StorageError>>,
}

impl MemoryStore {
    /// Store an original as an upload would.
    pub fn insert(&self, bucket: &str, key: &str, body: Vec<u8>) {
        self.objects.lock().unwrap().insert(
            (bucket.into(), key.into()),
            PutObject {
                bucket: bucket.into(),
                key: key.into(),
                body,
                content_type: "application/octet-stream".into(),
                cache_control: String::new(),
                metadata: BTreeMap::new(),
            },
        );
    }

    /// The next calls fail with these errors, in order.
    pub fn fail_next(&self, errors: impl IntoIterator<Item = StorageError>) {
        self.failures.lock().unwrap().extend(errors);
    }

    pub fn object(&self, bucket: &str, key: &str) -> Option<PutObject> {
        let objects = self.objects.lock().unwrap();
        objects.get(&(bucket.into(), key.into())).cloned()
    }

    /// Keys stored in `bucket`, sorted.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let objects = self.objects.lock().unwrap();
        objects
            .keys()
            .filter(|(b, _)| b == bucket)
            .map(|(_, k)| k.clone())
            .collect()
    }

    fn injected(&self) -> Result<(), StorageError> {
        let mut failures = self.failures.lock().unwrap();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.remove(0))
        }
    }
}

impl ObjectLister for MemoryStore {
    /// The continuation token is the last key of the previous page.
    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: Option<&str>,
        continuation: Option<&str>,
        max_keys: i32,
    ) -> Result<ListPage, StorageError> {
        self.injected()?;
        let after = continuation.or(start_after).unwrap_or("");
        let objects = self.objects.lock().unwrap();
        let mut page: Vec<Listed> = objects
            .iter()
            .filter(|((b, k), _)| b == bucket && k.starts_with(prefix) && k.as_str() > after)
            .take(max_keys.max(1) as usize + 1)
            .map(|((_, k), o)| Listed {
                key: k.clone(),
                size: o.body.len() as u64,
                etag: Some(format!("etag-{}", o.body.len())),
            })
            .collect();
        let next = if page.len() > max_keys.max(1) as usize {
            page.pop();
            page.last().map(|o| o.key.clone())
        } else {
            None
        };
        Ok(ListPage {
            objects: page,
            next,
        })
    }
}

impl ObjectStore for MemoryStore {
    async fn get(&self, object: &ObjectRef, max_bytes: u64) -> Result<Fetched, StorageError> {
        self.injected()?;
        let stored = self
            .object(&object.bucket, &object.key)
            .ok_or(StorageError::NotFound)?;
        let bytes = stored.body.len() as u64;
        if bytes > max_bytes {
            return Err(StorageError::TooLarge {
                bytes,
                max: max_bytes,
            });
        }
        Ok(Fetched {
            bytes: stored.body,
            etag: Some(format!("etag-{bytes}")),
            version_id: None,
        })
    }

    async fn put(&self, object: PutObject) -> Result<(), StorageError> {
        self.injected()?;
        self.objects
            .lock()
            .unwrap()
            .insert((object.bucket.clone(), object.key.clone()), object);
        Ok(())
    }
}
