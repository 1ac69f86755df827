//! Where originals are read from and renditions written to: a small trait, its S3
//! implementation, and an in-memory fake for tests.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::EncodingType;

use crate::model::{Failure, ObjectRef};

/// S3's limits on what one PUT may carry.
pub const MAX_KEY_BYTES: usize = 1024;
/// User metadata: names and values together, in bytes.
pub const MAX_METADATA_BYTES: usize = 2048;

/// Why a storage call failed, split by what a retry can do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    #[error("no such object")]
    NotFound,
    /// A precondition failed: the original was overwritten after its event was sent (GET), or
    /// another worker wrote the manifest first (PUT).
    #[error("the object changed since this event: {0}")]
    Changed(String),
    /// Retried: access is denied while a new role or key propagates, and a permanent mistake
    /// still ends in the dead-letter queue after the last receive, with this reason.
    #[error("access denied: {0}")]
    AccessDenied(String),
    #[error("the object is {bytes} bytes, over the limit of {max} bytes")]
    TooLarge { bytes: u64, max: u64 },
    /// Throttling, 5xx, timeouts, expired credentials, clock skew, connection errors: worth
    /// another try later.
    #[error("temporary storage failure: {0}")]
    Transient(String),
    /// A request S3 refuses for what it is (no such bucket, invalid name, archived object).
    #[error("storage failure: {0}")]
    Other(String),
}

impl StorageError {
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StorageError::Transient(_) | StorageError::AccessDenied(_)
        )
    }
}

impl From<StorageError> for Failure {
    fn from(e: StorageError) -> Self {
        let kind = match &e {
            StorageError::NotFound => "not_found",
            StorageError::Changed(_) => "changed",
            StorageError::AccessDenied(_) => "access_denied",
            StorageError::TooLarge { .. } => "too_large",
            StorageError::Transient(_) => "storage_unavailable",
            StorageError::Other(_) => "storage",
        };
        Failure {
            kind,
            retryable: e.is_retryable(),
            message: e.to_string(),
        }
    }
}

/// An original, downloaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub etag: Option<String>,
    pub version_id: Option<String>,
}

/// A small object read whole (a manifest), with the ETag a conditional write can name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub bytes: Vec<u8>,
    pub etag: Option<String>,
}

/// What a PUT requires of the object it replaces.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Precondition {
    #[default]
    None,
    /// There must be no object at the key yet (`If-None-Match: *`).
    Absent,
    /// The object at the key must still have this ETag (`If-Match`).
    Unchanged(String),
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
    pub precondition: Precondition,
}

/// The calls the pipeline needs.
pub trait ObjectStore: Send + Sync + 'static {
    /// Download an object, refusing (before or while downloading) one over `max_bytes`. When
    /// the reference carries an ETag, an object that no longer has it is `Changed`.
    fn get(
        &self,
        object: &ObjectRef,
        max_bytes: u64,
    ) -> impl Future<Output = Result<Fetched, StorageError>> + Send;

    /// Read a small object whole; `None` when there is none, `TooLarge` over `max_bytes`.
    fn read(
        &self,
        bucket: &str,
        key: &str,
        max_bytes: u64,
    ) -> impl Future<Output = Result<Option<Stored>, StorageError>> + Send;

    fn put(&self, object: PutObject) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// The ETag of the object at a key now (a HEAD); `None` when there is none.
    fn head(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<String>, StorageError>> + Send;

    /// Delete an object; deleting one that is not there succeeds.
    fn delete(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
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

/// What S3's error code says a retry can change; the HTTP status decides only for codes not
/// listed. The README's table "What is retried" follows this function.
pub fn classify_code(status: u16, code: &str, text: String) -> StorageError {
    match code {
        "NoSuchKey" | "NotFound" | "NoSuchVersion" => StorageError::NotFound,
        "PreconditionFailed" | "ConditionalRequestConflict" => StorageError::Changed(text),
        // A new role, key or bucket policy takes a while to reach every S3 front end.
        "AccessDenied"
        | "InvalidAccessKeyId"
        | "SignatureDoesNotMatch"
        | "AllAccessDisabled"
        | "KMS.AccessDeniedException" => StorageError::AccessDenied(text),
        "RequestTimeout"
        | "ExpiredToken"
        | "TokenRefreshRequired"
        | "RequestTimeTooSkewed"
        | "SlowDown"
        | "InternalError"
        | "ServiceUnavailable"
        | "Throttling"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "OperationAborted"
        | "KMS.ThrottlingException"
        | "KMS.KMSInternalException" => StorageError::Transient(text),
        "NoSuchBucket"
        | "InvalidBucketName"
        | "InvalidObjectState"
        | "KeyTooLongError"
        | "MetadataTooLarge"
        | "EntityTooLarge"
        | "InvalidArgument"
        | "InvalidRequest"
        | "MethodNotAllowed"
        | "KMS.DisabledException"
        | "KMS.NotFoundException" => StorageError::Other(text),
        _ => match status {
            404 => StorageError::NotFound,
            412 => StorageError::Changed(text),
            403 => StorageError::AccessDenied(text),
            408 | 429 | 500..=599 => StorageError::Transient(text),
            _ => StorageError::Other(text),
        },
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
            classify_code(status, code, text)
        }
        // The SDK refused to build the request (an invalid bucket name, say): no retry fixes it.
        SdkError::ConstructionFailure(_) => {
            StorageError::Other(DisplayErrorContext(&err).to_string())
        }
        // Timeouts, connection failures, truncated responses: transient by nature.
        _ => StorageError::Transient(DisplayErrorContext(&err).to_string()),
    }
}

/// ETags are quoted on the wire and in conditional headers, bare in events and manifests.
fn quoted(etag: &str) -> String {
    format!("\"{}\"", etag.trim_matches('"'))
}

fn bare(etag: Option<&str>) -> Option<String> {
    etag.map(|e| e.trim_matches('"').to_string())
}

/// A response body read whole, refused as soon as it passes `max_bytes`.
async fn read_bounded(
    mut body: aws_sdk_s3::primitives::ByteStream,
    announced: u64,
    max_bytes: u64,
) -> Result<Vec<u8>, StorageError> {
    let mut bytes = Vec::with_capacity(announced.min(max_bytes) as usize);
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
    Ok(bytes)
}

impl ObjectStore for S3Store {
    async fn get(&self, object: &ObjectRef, max_bytes: u64) -> Result<Fetched, StorageError> {
        // The key's current object, and only if it is still the upload the event announced:
        // once a key is overwritten (in a versioned bucket too), an older event's job renders
        // nothing and the newer upload's own event renders it. So never by `versionId`: that
        // would render an old version after a newer one.
        let mut request = self
            .client
            .get_object()
            .bucket(&object.bucket)
            .key(&object.key);
        if let Some(etag) = &object.etag {
            request = request.if_match(quoted(etag));
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
        let etag = bare(response.e_tag());
        let version_id = response.version_id().map(str::to_string);
        // ...and while reading it, in case it is not.
        let bytes = read_bounded(response.body, announced, max_bytes).await?;
        Ok(Fetched {
            bytes,
            etag,
            version_id,
        })
    }

    async fn read(
        &self,
        bucket: &str,
        key: &str,
        max_bytes: u64,
    ) -> Result<Option<Stored>, StorageError> {
        let response = match self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(response) => response,
            Err(e) => {
                return match classify(e) {
                    StorageError::NotFound => Ok(None),
                    other => Err(other),
                }
            }
        };
        let announced = response.content_length().unwrap_or(0).max(0) as u64;
        if announced > max_bytes {
            return Err(StorageError::TooLarge {
                bytes: announced,
                max: max_bytes,
            });
        }
        let etag = bare(response.e_tag());
        let bytes = read_bounded(response.body, announced, max_bytes).await?;
        Ok(Some(Stored { bytes, etag }))
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
        request = match object.precondition {
            Precondition::None => request,
            Precondition::Absent => request.if_none_match("*"),
            Precondition::Unchanged(etag) => request.if_match(quoted(&etag)),
        };
        request.send().await.map_err(classify)?;
        Ok(())
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<Option<String>, StorageError> {
        match self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(head) => Ok(Some(bare(head.e_tag()).unwrap_or_default())),
            Err(e) => match classify(e) {
                StorageError::NotFound => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), StorageError> {
        self.client
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(classify)?;
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
            // Keys may hold characters XML 1.0 cannot carry (S3 allows any UTF-8): asked for
            // URL-encoded keys, S3 can list them; without, such a page does not parse.
            .encoding_type(EncodingType::Url)
            .send()
            .await
            .map_err(classify)?;
        // Decoded only when the answer says it is encoded, as the AWS CLI does.
        let encoded = response.encoding_type() == Some(&EncodingType::Url);
        let objects = response
            .contents()
            .iter()
            .filter_map(|o| Some((o, o.key()?)))
            .map(|(o, key)| {
                Ok(Listed {
                    key: if encoded {
                        crate::notification::decode_key(key).map_err(StorageError::Other)?
                    } else {
                        key.to_string()
                    },
                    size: o.size().unwrap_or(0).max(0) as u64,
                    etag: o.e_tag().map(|e| e.trim_matches('"').to_string()),
                })
            })
            .collect::<Result<_, StorageError>>()?;
        let next = if response.is_truncated() == Some(true) {
            response.next_continuation_token().map(str::to_string)
        } else {
            None
        };
        Ok(ListPage { objects, next })
    }
}

/// How the fake answers a conditional PUT (`If-Match`) on a key that holds no object. AWS's
/// user guide ("How to prevent object overwrites with conditional writes",
/// docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html) says 404 Not Found
/// when there is no current version or it is a delete marker; the PutObject API reference
/// names only 412 Precondition Failed for a failed `If-Match`; emulators differ (see
/// tests/aws.rs). Callers must treat both as "the object changed".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingIfMatch {
    #[default]
    NotFound,
    PreconditionFailed,
}

/// A storage call, as the fake's hooks and call log name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Get,
    Read,
    Put,
    Head,
    Delete,
    List,
}

/// What runs before a matching call: a concurrent user or worker acting in between.
type Hook = Box<dyn FnOnce(&MemoryStore) + Send>;

/// What runs before every call (see [`MemoryStore::step`]): it may block until a test's
/// scheduler lets the call go, and may answer it with an error instead.
pub type Step = std::sync::Arc<dyn Fn(Call, &str) -> Option<StorageError> + Send + Sync>;

/// Which call a hook runs before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum At {
    /// The next call of one of these kinds on this key.
    Call(Vec<Call>, String),
    /// The call with this index in `calls` (0-based), whatever it is.
    Nth(usize),
}

/// One version of a key: an object, or a delete marker (`None`).
#[derive(Debug, Clone)]
struct Version {
    id: String,
    object: Option<PutObject>,
}

/// An in-memory store for tests, answering as S3 documents (cited where it matters):
/// - ETags are a digest of the body, as for a single-part upload.
/// - `If-None-Match: *` fails with 412 when the key's current version is an object, and
///   succeeds over a delete marker ("applies only to the current version").
/// - `If-Match` fails with 412 on another ETag and, on a key with no current object, as
///   [`MissingIfMatch`] says; a 409 `ConditionalRequestConflict` can be injected with
///   [`MemoryStore::fail_next`].
/// - In a versioned bucket ([`MemoryStore::enable_versioning`]) a PUT adds a version, a
///   DELETE without a version id adds a delete marker (GET/HEAD then answer 404), and
///   [`MemoryStore::delete_version`] removes one version for good, making the previous one
///   current again (S3's "Deleting object versions"). Unversioned, a DELETE removes the key.
///
/// Tests interleave other work with [`MemoryStore::before`] and count calls with `calls`.
#[derive(Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<(String, String), Vec<Version>>>,
    versioned: Mutex<std::collections::BTreeSet<String>>,
    next_version: std::sync::atomic::AtomicU64,
    failures: Mutex<Vec<StorageError>>,
    hooks: Mutex<Vec<(At, Hook)>>,
    pub missing_if_match: Mutex<MissingIfMatch>,
    /// Every successful PUT, in order: what a test can count renders by.
    pub puts: Mutex<Vec<String>>,
    /// Every call, in order, before it is answered.
    pub calls: Mutex<Vec<(Call, String)>>,
    /// How long each GET takes.
    pub latency: Mutex<std::time::Duration>,
    /// Run before every call, after it is logged and before its hook: a model test parks
    /// each call of each worker here, so that concurrent deliveries interleave call by call
    /// in the order it chooses, and fails the calls it chooses.
    pub step: Mutex<Option<Step>>,
}

impl MemoryStore {
    /// Store an original as an upload would; returns its version id ("null" unversioned).
    pub fn insert(&self, bucket: &str, key: &str, body: Vec<u8>) -> String {
        self.store(PutObject {
            bucket: bucket.into(),
            key: key.into(),
            body,
            content_type: "application/octet-stream".into(),
            cache_control: String::new(),
            metadata: BTreeMap::new(),
            precondition: Precondition::None,
        })
    }

    /// Keep every version of `bucket`'s objects from now on.
    pub fn enable_versioning(&self, bucket: &str) {
        self.versioned.lock().unwrap().insert(bucket.into());
    }

    fn is_versioned(&self, bucket: &str) -> bool {
        self.versioned.lock().unwrap().contains(bucket)
    }

    fn new_version(&self, bucket: &str) -> String {
        if self.is_versioned(bucket) {
            let n = self
                .next_version
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            format!("v{}", n + 1)
        } else {
            "null".into()
        }
    }

    fn store(&self, object: PutObject) -> String {
        let id = self.new_version(&object.bucket);
        let versioned = id != "null";
        let mut objects = self.objects.lock().unwrap();
        let versions = objects
            .entry((object.bucket.clone(), object.key.clone()))
            .or_default();
        if !versioned {
            versions.retain(|v| v.id != "null");
        }
        versions.push(Version {
            id: id.clone(),
            object: Some(object),
        });
        id
    }

    /// Delete one version for good (DeleteObject with a versionId): the previous version,
    /// if any, becomes current again, and S3 sends no ObjectCreated event for it.
    pub fn delete_version(&self, bucket: &str, key: &str, version_id: &str) {
        let mut objects = self.objects.lock().unwrap();
        let slot = (bucket.to_string(), key.to_string());
        if let Some(versions) = objects.get_mut(&slot) {
            versions.retain(|v| v.id != version_id);
            if versions.is_empty() {
                objects.remove(&slot);
            }
        }
    }

    /// The version ids of a key, oldest first, with `true` for delete markers.
    pub fn versions(&self, bucket: &str, key: &str) -> Vec<(String, bool)> {
        let objects = self.objects.lock().unwrap();
        objects
            .get(&(bucket.into(), key.into()))
            .map(|vs| {
                vs.iter()
                    .map(|v| (v.id.clone(), v.object.is_none()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The next calls fail with these errors, in order.
    pub fn fail_next(&self, errors: impl IntoIterator<Item = StorageError>) {
        self.failures.lock().unwrap().extend(errors);
    }

    /// Run `hook` just before the call `at` names (before injected failures are consulted,
    /// so a hook may inject one for that very call).
    pub fn before(&self, at: At, hook: impl FnOnce(&MemoryStore) + Send + 'static) {
        self.hooks.lock().unwrap().push((at, Box::new(hook)));
    }

    /// Drop the hooks that have not run.
    pub fn hooks_clear(&self) {
        self.hooks.lock().unwrap().clear();
    }

    /// The key's current object; `None` when there is none or the current version is a
    /// delete marker.
    pub fn object(&self, bucket: &str, key: &str) -> Option<PutObject> {
        let objects = self.objects.lock().unwrap();
        objects
            .get(&(bucket.into(), key.into()))
            .and_then(|vs| vs.last())
            .and_then(|v| v.object.clone())
    }

    /// Keys whose current version is an object in `bucket`, sorted.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let objects = self.objects.lock().unwrap();
        objects
            .iter()
            .filter(|((b, _), vs)| b == bucket && vs.last().is_some_and(|v| v.object.is_some()))
            .map(|((_, k), _)| k.clone())
            .collect()
    }

    /// The fake's ETag: a digest of the body, as S3's is for a single-part upload.
    pub fn etag_of(body: &[u8]) -> String {
        crate::digest::hex(body)
    }

    /// Log the call, run its hook, then take an injected failure if one is queued.
    fn enter(&self, call: Call, key: &str) -> Result<(), StorageError> {
        let index = {
            let mut calls = self.calls.lock().unwrap();
            calls.push((call, key.to_string()));
            calls.len() - 1
        };
        let step = self.step.lock().unwrap().clone();
        if let Some(error) = step.and_then(|step| step(call, key)) {
            return Err(error);
        }
        let hook = {
            let mut hooks = self.hooks.lock().unwrap();
            let found = hooks.iter().position(|(at, _)| match at {
                At::Call(calls, k) => calls.contains(&call) && k == key,
                At::Nth(n) => *n == index,
            });
            found.map(|i| hooks.remove(i).1)
        };
        if let Some(hook) = hook {
            hook(self);
        }
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
        self.enter(Call::List, prefix)?;
        let after = continuation.or(start_after).unwrap_or("");
        let mut page: Vec<Listed> = self
            .keys(bucket)
            .into_iter()
            .filter(|k| k.starts_with(prefix) && k.as_str() > after)
            .take(max_keys.max(1) as usize + 1)
            .filter_map(|k| {
                let o = self.object(bucket, &k)?;
                Some(Listed {
                    key: k,
                    size: o.body.len() as u64,
                    etag: Some(Self::etag_of(&o.body)),
                })
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
        let latency = *self.latency.lock().unwrap();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        self.enter(Call::Get, &object.key)?;
        let current = {
            let objects = self.objects.lock().unwrap();
            objects
                .get(&(object.bucket.clone(), object.key.clone()))
                .and_then(|vs| vs.last().cloned())
        };
        let Some(Version {
            id,
            object: Some(stored),
        }) = current
        else {
            return Err(StorageError::NotFound);
        };
        let etag = Self::etag_of(&stored.body);
        if object.etag.as_ref().is_some_and(|e| *e != etag) {
            return Err(StorageError::Changed("PreconditionFailed".into()));
        }
        let bytes = stored.body.len() as u64;
        if bytes > max_bytes {
            return Err(StorageError::TooLarge {
                bytes,
                max: max_bytes,
            });
        }
        Ok(Fetched {
            bytes: stored.body,
            etag: Some(etag),
            version_id: (id != "null").then_some(id),
        })
    }

    async fn read(
        &self,
        bucket: &str,
        key: &str,
        max_bytes: u64,
    ) -> Result<Option<Stored>, StorageError> {
        self.enter(Call::Read, key)?;
        let Some(o) = self.object(bucket, key) else {
            return Ok(None);
        };
        if o.body.len() as u64 > max_bytes {
            return Err(StorageError::TooLarge {
                bytes: o.body.len() as u64,
                max: max_bytes,
            });
        }
        Ok(Some(Stored {
            etag: Some(Self::etag_of(&o.body)),
            bytes: o.body,
        }))
    }

    async fn put(&self, object: PutObject) -> Result<(), StorageError> {
        self.enter(Call::Put, &object.key)?;
        if object.key.len() > MAX_KEY_BYTES {
            return Err(StorageError::Other("KeyTooLongError".into()));
        }
        let metadata: usize = object.metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
        if metadata > MAX_METADATA_BYTES {
            return Err(StorageError::Other("MetadataTooLarge".into()));
        }
        let current = self
            .object(&object.bucket, &object.key)
            .map(|o| Self::etag_of(&o.body));
        match (&object.precondition, &current) {
            (Precondition::None, _) => {}
            (Precondition::Absent, None) => {}
            (Precondition::Absent, Some(_)) => {
                return Err(StorageError::Changed("PreconditionFailed".into()))
            }
            (Precondition::Unchanged(_), None) => {
                return Err(match *self.missing_if_match.lock().unwrap() {
                    MissingIfMatch::NotFound => StorageError::NotFound,
                    MissingIfMatch::PreconditionFailed => {
                        StorageError::Changed("PreconditionFailed".into())
                    }
                })
            }
            (Precondition::Unchanged(etag), Some(now)) if etag != now => {
                return Err(StorageError::Changed("PreconditionFailed".into()))
            }
            (Precondition::Unchanged(_), Some(_)) => {}
        }
        self.puts.lock().unwrap().push(object.key.clone());
        self.store(object);
        Ok(())
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<Option<String>, StorageError> {
        self.enter(Call::Head, key)?;
        Ok(self.object(bucket, key).map(|o| Self::etag_of(&o.body)))
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), StorageError> {
        self.enter(Call::Delete, key)?;
        self.remove(bucket, key);
        Ok(())
    }
}

impl MemoryStore {
    /// DeleteObject without a version id, at once: a delete marker in a versioned bucket,
    /// the key gone in an unversioned one.
    pub fn remove(&self, bucket: &str, key: &str) {
        if self.is_versioned(bucket) {
            let id = self.new_version(bucket);
            let mut objects = self.objects.lock().unwrap();
            objects
                .entry((bucket.to_string(), key.to_string()))
                .or_default()
                .push(Version { id, object: None });
        } else {
            self.objects
                .lock()
                .unwrap()
                .remove(&(bucket.to_string(), key.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RenderError;

    #[test]
    fn transient_and_access_denied_storage_errors_are_retryable() {
        assert!(Failure::from(StorageError::Transient("503".into())).retryable);
        assert!(Failure::from(StorageError::AccessDenied("x".into())).retryable);
        assert!(!Failure::from(StorageError::NotFound).retryable);
        assert!(!Failure::from(StorageError::Other("NoSuchBucket".into())).retryable);
        assert!(!Failure::from(RenderError::Empty).retryable);
        assert_eq!(Failure::from(RenderError::Empty).kind, "empty");
    }

    /// One row per code of the README's table: (code, HTTP status, retried?).
    const TABLE: &[(&str, u16, bool)] = &[
        ("NoSuchKey", 404, false),
        ("NoSuchVersion", 404, false),
        ("NoSuchBucket", 404, false),
        ("InvalidBucketName", 400, false),
        ("InvalidObjectState", 403, false),
        ("KeyTooLongError", 400, false),
        ("MetadataTooLarge", 400, false),
        ("PreconditionFailed", 412, false),
        ("AccessDenied", 403, true),
        ("InvalidAccessKeyId", 403, true),
        ("SignatureDoesNotMatch", 403, true),
        ("RequestTimeTooSkewed", 403, true),
        ("ExpiredToken", 400, true),
        ("RequestTimeout", 400, true),
        ("SlowDown", 503, true),
        ("InternalError", 500, true),
        ("ServiceUnavailable", 503, true),
        ("KMS.ThrottlingException", 400, true),
        ("SomethingNew", 503, true),
        ("SomethingNew", 400, false),
    ];

    #[test]
    fn s3_errors_are_classified_by_code_not_only_by_status() {
        for &(code, status, retried) in TABLE {
            let e = classify_code(status, code, code.to_string());
            assert_eq!(e.is_retryable(), retried, "{code} (HTTP {status}) -> {e:?}");
        }
        assert_eq!(
            classify_code(404, "NoSuchKey", String::new()),
            StorageError::NotFound
        );
        assert!(matches!(
            classify_code(412, "PreconditionFailed", String::new()),
            StorageError::Changed(_)
        ));
    }
}
