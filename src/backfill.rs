//! Backfill: list the originals already in a bucket and enqueue each as an S3-shaped
//! `ObjectCreated` message, so the pipeline renders them exactly as it renders uploads.
//!
//! Pages are listed in key order and each page is enqueued completely before the next one is
//! listed, so "every key up to the last one of the finished pages" is a safe point to resume
//! from (`--start-after`). A second, listing-only pass counts the objects so the progress can
//! show an ETA; it costs one LIST call per 1,000 objects.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::warn;

use crate::config::PipelineConfig;
use crate::display::{self, escaped};
use crate::event_body;
use crate::model::ObjectRef;
use crate::outputs;
use crate::progress::Progress;
use crate::queue::{send_all, Outgoing, Queue, BATCH};
use crate::storage::{Listed, ObjectLister, ObjectStore, StorageError};
use crate::store;

/// Who announces backfilled objects (the event's `configurationId` and `principalId`).
pub const ORIGIN: &str = "thumbs-backfill";

/// Send attempts per entry before it counts as failed.
const SEND_ATTEMPTS: u32 = 5;

#[derive(Debug, Clone)]
pub struct Options {
    pub bucket: String,
    pub prefix: String,
    pub queue_url: String,
    /// List only keys after this one (resume).
    pub start_after: Option<String>,
    pub dry_run: bool,
    /// Keys per LIST call (S3's maximum is 1,000).
    pub page_size: i32,
    /// Batch sends in flight at once.
    pub in_flight: usize,
    /// `awsRegion` of the events.
    pub region: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub listed: u64,
    pub skipped: u64,
    pub enqueued: u64,
    pub failed: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub counts: Counts,
    /// Every key up to this one was enqueued or skipped: where a rerun can start after.
    pub resume_after: Option<String>,
    /// Keys that could not be enqueued, with the reason (the first 100).
    pub failed_keys: Vec<(String, String)>,
    /// Stopped by a signal before the listing ended.
    pub interrupted: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("listing s3://{}/{} failed after {listed} objects: {source}", escaped(.bucket), escaped(.prefix))]
pub struct ListError {
    pub bucket: String,
    pub prefix: String,
    pub listed: u64,
    pub resume_after: Option<String>,
    pub source: StorageError,
}

/// Whether an original's renditions are already up to date (`--only-missing`).
pub trait AlreadyDone: Send + Sync + 'static {
    fn is_done(
        &self,
        bucket: &str,
        object: &Listed,
    ) -> impl Future<Output = Result<bool, StorageError>> + Send;
}

/// Without `--only-missing`: nothing counts as done.
pub struct NothingDone;

impl AlreadyDone for NothingDone {
    async fn is_done(&self, _bucket: &str, _object: &Listed) -> Result<bool, StorageError> {
        Ok(false)
    }
}

/// `--only-missing`: an original is done when the protocol says so (`outputs::is_done`): its
/// manifest records the ETag it has now and the settings in force, every rendition it lists
/// exists, and no failure it lists is a shortage a new try could fix.
pub struct ManifestCurrent<S> {
    store: S,
    config: PipelineConfig,
}

impl<S> ManifestCurrent<S> {
    pub fn new(store: S, config: PipelineConfig) -> Self {
        ManifestCurrent { store, config }
    }
}

impl<S: ObjectStore> AlreadyDone for ManifestCurrent<S> {
    async fn is_done(&self, bucket: &str, object: &Listed) -> Result<bool, StorageError> {
        outputs::is_done(
            &self.store,
            &self.config,
            bucket,
            &object.key,
            object.etag.as_deref(),
            // Each key against its own rule: changing one rule re-renders only its keys.
            &store::fingerprint_for(&self.config, &object.key),
        )
        .await
        .map_err(|f| StorageError::Transient(f.message))
    }
}

/// Folder markers (`photos/`) are not images.
fn is_folder_marker(object: &Listed) -> bool {
    object.key.ends_with('/')
}

/// List, filter and enqueue; see the module comment. `stop` ends the run after the page in
/// hand; `progress` gets a line per page.
pub async fn run<L: ObjectLister, Q: Queue, D: AlreadyDone>(
    lister: &L,
    queue: Arc<Q>,
    done: Arc<D>,
    options: &Options,
    stop: &AtomicBool,
    progress: &mut Progress,
) -> Result<Summary, ListError> {
    const UNKNOWN: u64 = u64::MAX;
    let total = AtomicU64::new(UNKNOWN);
    let counting = async {
        match count(lister, options).await {
            Ok(n) => total.store(n, Ordering::Relaxed),
            Err(e) => warn!(error = %e, "counting the objects failed: no ETA"),
        }
    };
    let work = enqueue_pages(lister, queue, done, options, stop, |summary| {
        let known = total.load(Ordering::Relaxed);
        let c = &summary.counts;
        let resume = display::start_after(summary.resume_after.as_deref().unwrap_or(""));
        let detail = format!(
            "enqueued {} skipped {} failed {}; resume with {}",
            c.enqueued,
            c.skipped,
            c.failed,
            display::command(resume.iter().map(String::as_str))
        );
        progress.update(c.listed, (known != UNKNOWN).then_some(known), &detail);
    });
    let result = {
        tokio::pin!(counting, work);
        let mut counted = false;
        loop {
            // Work first: the count only matters while there is work left to show.
            tokio::select! {
                biased;
                result = &mut work => break result,
                _ = &mut counting, if !counted => counted = true,
            }
        }
    };
    progress.finish();
    result
}

async fn count<L: ObjectLister>(lister: &L, options: &Options) -> Result<u64, StorageError> {
    let mut n = 0;
    let mut next: Option<String> = None;
    loop {
        let page = lister
            .list_page(
                &options.bucket,
                &options.prefix,
                options.start_after.as_deref(),
                next.as_deref(),
                1000,
            )
            .await?;
        n += page.objects.len() as u64;
        match page.next {
            Some(token) => next = Some(token),
            None => return Ok(n),
        }
    }
}

async fn enqueue_pages<L: ObjectLister, Q: Queue, D: AlreadyDone>(
    lister: &L,
    queue: Arc<Q>,
    done: Arc<D>,
    options: &Options,
    stop: &AtomicBool,
    mut on_page: impl FnMut(&Summary),
) -> Result<Summary, ListError> {
    let mut summary = Summary {
        resume_after: options.start_after.clone(),
        ..Default::default()
    };
    let url: Arc<str> = Arc::from(options.queue_url.as_str());
    let slots = Arc::new(Semaphore::new(options.in_flight.max(1)));
    let mut next: Option<String> = None;
    loop {
        let page = lister
            .list_page(
                &options.bucket,
                &options.prefix,
                options.start_after.as_deref(),
                next.as_deref(),
                options.page_size.clamp(1, 1000),
            )
            .await
            .map_err(|source| ListError {
                bucket: options.bucket.clone(),
                prefix: options.prefix.clone(),
                listed: summary.counts.listed,
                resume_after: summary.resume_after.clone(),
                source,
            })?;
        summary.counts.listed += page.objects.len() as u64;
        let skip = skipped(&done, &slots, &options.bucket, &page.objects).await;
        summary.counts.skipped += skip.iter().filter(|&&s| s).count() as u64;
        let todo: Vec<&Listed> = page
            .objects
            .iter()
            .zip(&skip)
            .filter_map(|(object, &skip)| (!skip).then_some(object))
            .collect();
        let failed = if options.dry_run {
            Vec::new()
        } else {
            send_page(&queue, &url, &slots, &todo, options).await
        };
        summary.counts.enqueued += (todo.len() - failed.len()) as u64;
        summary.counts.failed += failed.len() as u64;
        // A failure pins the resume point before it, so a rerun retries the failed keys.
        if summary.counts.failed == 0 {
            if let Some(last) = page.objects.last() {
                summary.resume_after = Some(last.key.clone());
            }
        }
        let room = 100usize.saturating_sub(summary.failed_keys.len());
        summary.failed_keys.extend(failed.into_iter().take(room));
        on_page(&summary);
        next = match page.next {
            Some(token) => Some(token),
            None => return Ok(summary),
        };
        if stop.load(Ordering::Relaxed) {
            summary.interrupted = true;
            return Ok(summary);
        }
    }
}

/// Which objects of a page to skip: folder markers, and what `done` says is done (checked
/// `in_flight` at a time). A failed check is no reason to skip: the object is enqueued (one
/// render too many at worst).
async fn skipped<D: AlreadyDone>(
    done: &Arc<D>,
    slots: &Arc<Semaphore>,
    bucket: &str,
    objects: &[Listed],
) -> Vec<bool> {
    let mut skip: Vec<bool> = objects.iter().map(is_folder_marker).collect();
    let mut tasks = JoinSet::new();
    for (index, object) in objects.iter().enumerate().filter(|(i, _)| !skip[*i]) {
        let (done, object, bucket) = (Arc::clone(done), object.clone(), bucket.to_string());
        let permit = Arc::clone(slots)
            .acquire_owned()
            .await
            .expect("never closed");
        tasks.spawn(async move {
            let result = done.is_done(&bucket, &object).await;
            drop(permit);
            let is_done = result.unwrap_or_else(|e| {
                warn!(key = %escaped(&object.key), error = %e, "could not check the manifest; enqueueing");
                false
            });
            (index, is_done)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let (index, is_done) = joined.expect("check tasks do not panic");
        skip[index] = is_done;
    }
    skip
}

/// Enqueue one page's objects, `in_flight` batches at a time; returns (key, reason) of the
/// objects that could not be sent.
async fn send_page<Q: Queue>(
    queue: &Arc<Q>,
    url: &Arc<str>,
    slots: &Arc<Semaphore>,
    objects: &[&Listed],
    options: &Options,
) -> Vec<(String, String)> {
    let mut tasks = JoinSet::new();
    for chunk in objects.chunks(BATCH) {
        let keys: HashMap<String, String> = chunk
            .iter()
            .enumerate()
            .map(|(i, o)| (i.to_string(), o.key.clone()))
            .collect();
        let entries: Vec<Outgoing> = chunk
            .iter()
            .enumerate()
            .map(|(i, o)| Outgoing {
                id: i.to_string(),
                body: message_body(&options.bucket, o, options.region.as_deref()),
            })
            .collect();
        let (queue, url) = (Arc::clone(queue), Arc::clone(url));
        let permit = Arc::clone(slots)
            .acquire_owned()
            .await
            .expect("never closed");
        tasks.spawn(async move {
            let failed = send_all(queue.as_ref(), &url, entries, SEND_ATTEMPTS).await;
            drop(permit);
            failed
                .into_iter()
                .map(|(o, reason)| (keys[&o.id].clone(), reason))
                .collect::<Vec<_>>()
        });
    }
    let mut failed = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        failed.extend(joined.expect("send tasks do not panic"));
    }
    failed
}

/// The S3-shaped body announcing one listed object.
pub fn message_body(bucket: &str, object: &Listed, region: Option<&str>) -> String {
    let object = ObjectRef {
        bucket: bucket.to_string(),
        key: object.key.clone(),
        size: Some(object.size),
        etag: object.etag.clone(),
        version_id: None,
        sequencer: None,
    };
    event_body::object_created(&object, ORIGIN, region)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::{parse, Notification, Record};
    use crate::queue::MemoryQueue;
    use crate::storage::MemoryStore;

    fn options(page_size: i32) -> Options {
        Options {
            bucket: "in".into(),
            prefix: "uploads/".into(),
            queue_url: "q".into(),
            start_after: None,
            dry_run: false,
            page_size,
            in_flight: 3,
            region: None,
        }
    }

    fn store(n: usize) -> MemoryStore {
        let store = MemoryStore::default();
        for i in 0..n {
            store.insert("in", &format!("uploads/{i:04} x.jpg"), vec![1; 10]);
        }
        store
    }

    /// Decoded keys of every message in the queue, sorted.
    fn enqueued_keys(queue: &MemoryQueue) -> Vec<String> {
        let mut keys: Vec<String> = queue
            .bodies("q")
            .iter()
            .flat_map(|body| match parse(body).unwrap() {
                Notification::Records(records) => records
                    .into_iter()
                    .map(|r| match r {
                        Record::Created { object, .. } => object.key,
                        other => panic!("created record expected: {other:?}"),
                    })
                    .collect::<Vec<_>>(),
                Notification::TestEvent => panic!("test event"),
            })
            .collect();
        keys.sort();
        keys
    }

    async fn backfill(
        store: &MemoryStore,
        queue: &Arc<MemoryQueue>,
        options: &Options,
        stop: &AtomicBool,
    ) -> Result<Summary, ListError> {
        let mut progress = Progress::new(false);
        run(
            store,
            Arc::clone(queue),
            Arc::new(NothingDone),
            options,
            stop,
            &mut progress,
        )
        .await
    }

    #[tokio::test]
    async fn every_original_over_many_pages_is_enqueued_once() {
        let store = store(57);
        store.insert("in", "uploads/folder/", vec![]);
        store.insert("in", "elsewhere/x.jpg", vec![1]);
        let queue = Arc::new(MemoryQueue::default());
        let summary = backfill(&store, &queue, &options(10), &AtomicBool::new(false))
            .await
            .unwrap();
        assert_eq!(
            summary.counts,
            Counts {
                listed: 58,
                skipped: 1,
                enqueued: 57,
                failed: 0
            }
        );
        let expected: Vec<String> = (0..57).map(|i| format!("uploads/{i:04} x.jpg")).collect();
        assert_eq!(enqueued_keys(&queue), expected);
        assert_eq!(summary.resume_after.as_deref(), Some("uploads/folder/"));
    }

    #[tokio::test]
    async fn messages_carry_size_and_etag() {
        let store = store(1);
        let queue = Arc::new(MemoryQueue::default());
        backfill(&store, &queue, &options(10), &AtomicBool::new(false))
            .await
            .unwrap();
        let Notification::Records(records) = parse(&queue.bodies("q")[0]).unwrap() else {
            panic!()
        };
        let Record::Created { object, .. } = &records[0] else {
            panic!()
        };
        assert_eq!(object.size, Some(10));
        assert_eq!(
            object.etag.as_deref(),
            Some(MemoryStore::etag_of(&[1; 10]).as_str())
        );
    }

    #[tokio::test]
    async fn a_dry_run_lists_and_counts_but_sends_nothing() {
        let store = store(12);
        let queue = Arc::new(MemoryQueue::default());
        let mut opts = options(5);
        opts.dry_run = true;
        let summary = backfill(&store, &queue, &opts, &AtomicBool::new(false))
            .await
            .unwrap();
        assert_eq!(summary.counts.listed, 12);
        assert_eq!(summary.counts.enqueued, 12);
        assert_eq!(queue.send_calls(), 0);
    }

    #[tokio::test]
    async fn a_stopped_run_resumes_after_its_last_page_without_gaps_or_repeats() {
        let store = store(35);
        let queue = Arc::new(MemoryQueue::default());
        // Stop requested before the first page: the page in hand is finished, then it stops.
        let first = backfill(&store, &queue, &options(10), &AtomicBool::new(true))
            .await
            .unwrap();
        assert!(first.interrupted);
        assert_eq!(first.counts.enqueued, 10);
        let mut rest = options(10);
        rest.start_after = first.resume_after.clone();
        let second = backfill(&store, &queue, &rest, &AtomicBool::new(false))
            .await
            .unwrap();
        assert!(!second.interrupted);
        assert_eq!(second.counts.enqueued, 25);
        let expected: Vec<String> = (0..35).map(|i| format!("uploads/{i:04} x.jpg")).collect();
        assert_eq!(enqueued_keys(&queue), expected);
    }

    #[tokio::test]
    async fn entries_that_cannot_be_sent_are_counted_and_hold_the_resume_point() {
        let store = store(30);
        let queue = Arc::new(MemoryQueue::default());
        queue.refuse("uploads/0014+x.jpg", 100);
        let summary = backfill(&store, &queue, &options(10), &AtomicBool::new(false))
            .await
            .unwrap();
        assert_eq!(summary.counts.enqueued, 29);
        assert_eq!(summary.counts.failed, 1);
        assert_eq!(summary.failed_keys[0].0, "uploads/0014 x.jpg");
        // The first page went through; the resume point stays before the failed key.
        assert_eq!(summary.resume_after.as_deref(), Some("uploads/0009 x.jpg"));
    }

    /// A manifest for `key` for ETag `etag`, made with settings of fingerprint `settings`.
    fn manifest(store: &MemoryStore, key: &str, etag: &str, settings: &str) {
        let body = serde_json::json!({
            "source": {"key": key, "etag": etag, "bytes": 10, "format": "jpeg", "width": 1, "height": 1},
            "settings": settings, "placeholder": "", "renditions": [],
        });
        let folder = key.replacen("uploads/", "thumbnails/", 1);
        store.insert(
            "out",
            &format!("{folder}/manifest.json"),
            body.to_string().into_bytes(),
        );
    }

    #[tokio::test]
    async fn only_missing_skips_originals_whose_manifest_is_current() {
        let store = store(6);
        let config = PipelineConfig::from_env(&crate::config::Env::from_pairs([
            ("OUTPUT_BUCKET", "out"),
            ("INPUT_BUCKETS", "in"),
        ]))
        .unwrap();
        let now = store::settings_fingerprint(&config.render);
        let check = ManifestCurrent::new(MemoryStore::default(), config);
        manifest(
            &check.store,
            "uploads/0000 x.jpg",
            &MemoryStore::etag_of(&[1; 10]),
            &now,
        ); // current: skipped
        manifest(&check.store, "uploads/0001 x.jpg", "etag-99", &now); // the original changed
        manifest(
            &check.store,
            "uploads/0002 x.jpg",
            &MemoryStore::etag_of(&[1; 10]),
            "other",
        ); // presets changed
           // 0003 has no manifest at all.
        let etag = MemoryStore::etag_of(&[1; 10]);
        for (n, extra) in [
            // A shortage left one rendition unmade: a new try can make it.
            (
                4,
                serde_json::json!({"failures": [{"preset": "thumb", "format": "webp", "kind": "out_of_resources",
                "reason": "out of memory", "retryable": true}]}),
            ),
            // A listed rendition was deleted since.
            (
                5,
                serde_json::json!({"renditions": [{"preset": "thumb", "format": "webp", "content_type": "image/webp",
                "width": 1, "height": 1, "bytes": 1, "key": "thumbnails/0005 x.jpg/thumb.0123456789abcdef.webp"}]}),
            ),
        ] {
            let mut body = serde_json::json!({
                "source": {"etag": etag, "bytes": 10, "format": "jpeg", "width": 1, "height": 1},
                "settings": now, "placeholder": "", "renditions": [],
            });
            body.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            check.store.insert(
                "out",
                &format!("thumbnails/000{n} x.jpg/manifest.json"),
                body.to_string().into_bytes(),
            );
        }
        let queue = Arc::new(MemoryQueue::default());
        let mut progress = Progress::new(false);
        let summary = run(
            &store,
            Arc::clone(&queue),
            Arc::new(check),
            &options(10),
            &AtomicBool::new(false),
            &mut progress,
        )
        .await
        .unwrap();
        assert_eq!(summary.counts.skipped, 1);
        assert_eq!(
            enqueued_keys(&queue),
            [
                "uploads/0001 x.jpg",
                "uploads/0002 x.jpg",
                "uploads/0003 x.jpg",
                "uploads/0004 x.jpg",
                "uploads/0005 x.jpg"
            ]
        );
    }

    #[tokio::test]
    async fn a_listing_failure_says_where_to_resume() {
        let store = store(5);
        store.fail_next([StorageError::AccessDenied("no s3:ListBucket".into())]);
        let queue = Arc::new(MemoryQueue::default());
        let mut opts = options(10);
        opts.start_after = Some("uploads/0001 x.jpg".into());
        let err = backfill(&store, &queue, &opts, &AtomicBool::new(false))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no s3:ListBucket"), "{err}");
        assert_eq!(err.resume_after.as_deref(), Some("uploads/0001 x.jpg"));
    }
}
