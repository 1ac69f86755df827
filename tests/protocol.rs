//! The manifest protocol against the S3-faithful fake (src/storage.rs `MemoryStore`): each
//! finding of issue 17 as a schedule of uploads, overwrites, deletions and deliveries, with
//! the invariants checked after it, and an exhaustive enumeration of small schedules.
//!
//! Invariants, for one key, once every delivery (and every retry SQS would make) is done:
//! - the key holds an object: the manifest describes it (by ETag), and every rendition it
//!   lists exists;
//! - the key holds none: no rendition is left in its folder (a tombstone may stay);
//! - either way, nothing in the folder is unlisted (no orphans), and no other key's outputs
//!   were touched.

use std::sync::mpsc;
use std::sync::Arc;

use serde_json::{json, Value};
use thumbs::batch::Pipeline;
use thumbs::config::{Env, PipelineConfig};
use thumbs::model::{Message, MessageOutcome};
use thumbs::storage::{At, Call, MemoryStore, ObjectStore, StorageError};

const KEY: &str = "uploads/a.jpg";
const FOLDER: &str = "thumbnails/a.jpg/";
const MANIFEST: &str = "thumbnails/a.jpg/manifest.json";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Two small, different pictures: X and Y.
fn x() -> Vec<u8> {
    fixture("landscape.jpg")
}
fn y() -> Vec<u8> {
    fixture("alpha.png")
}

fn pipeline() -> Arc<Pipeline<MemoryStore>> {
    let config = PipelineConfig::from_env(&Env::from_pairs([
        ("OUTPUT_BUCKET", "out"),
        ("INPUT_BUCKETS", "in"),
        ("SYNC_DELETES", "true"),
    ]))
    .unwrap();
    Pipeline::new(MemoryStore::default(), config, 2)
}

/// An S3 event for `KEY`, as S3 sends it (eTag, versionId, sequencer when given).
fn event(name: &str, etag: Option<&str>, version: Option<&str>, sequencer: Option<&str>) -> Value {
    let mut object = json!({"key": KEY});
    if let Some(e) = etag {
        object["eTag"] = e.into();
    }
    if let Some(v) = version {
        object["versionId"] = v.into();
    }
    if let Some(s) = sequencer {
        object["sequencer"] = s.into();
    }
    json!({"eventName": name, "s3": {"bucket": {"name": "in"}, "object": object}})
}

fn message(id: &str, record: Value) -> Message {
    Message {
        id: id.into(),
        body: json!({"Records": [record]}).to_string(),
        receive_count: 1,
        ..Default::default()
    }
}

/// Deliver a message as SQS would: again while the outcome asks for a retry (up to 5 times).
async fn deliver(p: &Arc<Pipeline<MemoryStore>>, record: Value) -> MessageOutcome {
    let mut outcome = MessageOutcome::default();
    for _ in 0..5 {
        outcome = p
            .process_batch(vec![message("m", record.clone())], None)
            .await
            .remove(0);
        if outcome.retry.is_none() {
            break;
        }
    }
    outcome
}

fn upload(p: &Pipeline<MemoryStore>, body: Vec<u8>) -> (String, String) {
    let etag = MemoryStore::etag_of(&body);
    let version = p.store.insert("in", KEY, body);
    (etag, version)
}

fn created(etag: &str, version: Option<&str>, seq: &str) -> Value {
    event("ObjectCreated:Put", Some(etag), version, Some(seq))
}

fn stored_manifest(p: &Pipeline<MemoryStore>) -> Option<Value> {
    let stored = p.store.object("out", MANIFEST)?;
    Some(serde_json::from_slice(&stored.body).unwrap())
}

fn listed(manifest: &Value) -> Vec<String> {
    manifest["renditions"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| r["key"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The invariants of the module comment, for `KEY`; `Err` says which one broke.
fn check(p: &Pipeline<MemoryStore>) -> Result<(), String> {
    let outputs: Vec<String> = p
        .store
        .keys("out")
        .into_iter()
        .filter(|k| k.starts_with(FOLDER) && k != MANIFEST)
        .collect();
    let manifest = stored_manifest(p);
    match p.store.object("in", KEY) {
        Some(live) => {
            let etag = MemoryStore::etag_of(&live.body);
            let Some(m) = &manifest else {
                return Err(format!("the key holds {etag} but there is no manifest"));
            };
            if m["source"]["etag"].as_str() != Some(etag.as_str()) {
                return Err(format!(
                    "the key holds {etag}, the manifest describes {}",
                    m["source"]["etag"]
                ));
            }
            let list = listed(m);
            if list.is_empty() {
                return Err("the manifest lists no rendition".into());
            }
            if let Some(missing) = list.iter().find(|k| !outputs.contains(k)) {
                return Err(format!(
                    "the manifest lists {missing}, which does not exist"
                ));
            }
            if let Some(orphan) = outputs.iter().find(|k| !list.contains(k)) {
                return Err(format!("{orphan} is listed by no manifest"));
            }
        }
        None => {
            if !outputs.is_empty() {
                return Err(format!("the key was deleted; left: {outputs:?}"));
            }
            if manifest.as_ref().is_some_and(|m| m.get("source").is_some()) {
                return Err("the key was deleted; its manifest is still there".into());
            }
        }
    }
    Ok(())
}

/// A point where a delivery stops until the test lets it go on: another delivery, or the
/// user, acts in between. Needs a multi-threaded runtime (the paused call blocks its thread).
struct Gate {
    reached: mpsc::Receiver<()>,
    release: mpsc::Sender<()>,
}

impl Gate {
    fn at(store: &MemoryStore, at: At) -> Gate {
        let (reached_tx, reached) = mpsc::channel();
        let (release, release_rx) = mpsc::channel::<()>();
        store.before(at, move |_| {
            reached_tx.send(()).unwrap();
            let _ = release_rx.recv();
        });
        Gate { reached, release }
    }

    async fn reached(&self) -> bool {
        for _ in 0..200 {
            if self.reached.try_recv().is_ok() {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        false
    }
}

fn manifest_write() -> At {
    At::Call(vec![Call::Put, Call::Delete], MANIFEST.into())
}

const S1: &str = "0055AED6DCD90281E1";
const S2: &str = "0055AED6DCD90281E2";
const S3: &str = "0055AED6DCD90281E3";
const S4: &str = "0055AED6DCD90281E4";

// Point 1: a deletion's plain DELETE of manifest.json after a re-upload's manifest landed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deletion_racing_a_reupload_keeps_the_new_uploads_manifest() {
    let p = pipeline();
    let (ex, _) = upload(&p, x());
    deliver(&p, created(&ex, None, S1)).await;
    p.store.delete("in", KEY).await.unwrap();
    // The deletion decides, then waits before it touches the manifest...
    let gate = Gate::at(&p.store, manifest_write());
    let deletion = tokio::spawn({
        let p = Arc::clone(&p);
        async move { deliver(&p, event("ObjectRemoved:Delete", None, None, Some(S2))).await }
    });
    assert!(gate.reached().await);
    // ...while the key is uploaded again and rendered.
    let (ey, _) = upload(&p, y());
    deliver(&p, created(&ey, None, S3)).await;
    gate.release.send(()).unwrap();
    deletion.await.unwrap();
    check(&p).unwrap();
}

// Point 2: deleting a noncurrent version (DeleteObject with a versionId).
#[tokio::test]
async fn deleting_a_noncurrent_version_keeps_the_live_uploads_thumbnails() {
    let p = pipeline();
    p.store.enable_versioning("in");
    let (ex, vx) = upload(&p, x());
    deliver(&p, created(&ex, Some(&vx), S1)).await;
    let (ey, vy) = upload(&p, y());
    deliver(&p, created(&ey, Some(&vy), S2)).await;
    p.store.delete_version("in", KEY, &vx);
    deliver(&p, event("ObjectRemoved:Delete", None, Some(&vx), Some(S3))).await;
    check(&p).unwrap();
}

// Point 2: deleting the current version makes the previous one current, with no
// ObjectCreated event: its thumbnails must come back.
#[tokio::test]
async fn deleting_the_current_version_renders_the_version_that_is_current_again() {
    let p = pipeline();
    p.store.enable_versioning("in");
    let (ex, vx) = upload(&p, x());
    deliver(&p, created(&ex, Some(&vx), S1)).await;
    let (ey, vy) = upload(&p, y());
    deliver(&p, created(&ey, Some(&vy), S2)).await;
    p.store.delete_version("in", KEY, &vy);
    let outcome = deliver(&p, event("ObjectRemoved:Delete", None, Some(&vy), Some(S3))).await;
    assert!(outcome.dead_letters.is_empty(), "{outcome:?}");
    check(&p).unwrap();
}

#[tokio::test]
async fn a_delete_marker_removes_the_outputs() {
    let p = pipeline();
    p.store.enable_versioning("in");
    let (ex, vx) = upload(&p, x());
    deliver(&p, created(&ex, Some(&vx), S1)).await;
    p.store.delete("in", KEY).await.unwrap();
    deliver(
        &p,
        event(
            "ObjectRemoved:DeleteMarkerCreated",
            None,
            Some("v9"),
            Some(S2),
        ),
    )
    .await;
    check(&p).unwrap();
    assert!(p.store.keys("out").iter().all(|k| k == MANIFEST));
}

// Point 4 (the manifest side): a manifest listing failures is not current.
#[tokio::test]
async fn a_manifest_that_lists_failures_is_repaired_by_the_next_delivery() {
    let p = pipeline();
    let (ex, _) = upload(&p, x());
    deliver(&p, created(&ex, None, S1)).await;
    // As an earlier delivery that ran short of memory for one rendition left it.
    let mut m = stored_manifest(&p).unwrap();
    let lost = m["renditions"].as_array_mut().unwrap().pop().unwrap();
    m["failures"] = json!([{"preset": lost["preset"], "format": lost["format"],
        "kind": "out_of_resources", "reason": "out of memory"}]);
    p.store
        .delete("out", lost["key"].as_str().unwrap())
        .await
        .unwrap();
    p.store
        .insert("out", MANIFEST, serde_json::to_vec(&m).unwrap());
    let outcome = deliver(&p, created(&ex, None, S1)).await;
    assert_eq!(outcome.rendered, 1, "a redrive repairs it: {outcome:?}");
    check(&p).unwrap();
    assert!(stored_manifest(&p).unwrap().get("failures").is_none());
}

// Point 7: a manifest's contents are data; only `<folder><preset>.<16 hex>.<ext>` is ours.
#[tokio::test]
async fn a_crafted_manifest_cannot_delete_a_nested_uploads_outputs() {
    let p = pipeline();
    let nested = "uploads/a.jpg/b.jpg";
    p.store.insert("in", nested, y());
    let nested_event = json!({"eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "in"}, "object": {"key": nested}}});
    deliver(&p, nested_event).await;
    let nested_outputs: Vec<String> = p
        .store
        .keys("out")
        .into_iter()
        .filter(|k| k.starts_with("thumbnails/a.jpg/b.jpg/"))
        .collect();
    assert_eq!(nested_outputs.len(), 4, "three renditions and a manifest");
    let (ex, _) = upload(&p, x());
    deliver(&p, created(&ex, None, S1)).await;
    let mut m = stored_manifest(&p).unwrap();
    for key in &nested_outputs {
        m["renditions"].as_array_mut().unwrap().push(
            json!({"preset": "thumb", "format": "webp", "content_type": "image/webp",
                "width": 1, "height": 1, "bytes": 1, "key": key}),
        );
    }
    p.store
        .insert("out", MANIFEST, serde_json::to_vec(&m).unwrap());
    p.store.delete("in", KEY).await.unwrap();
    deliver(&p, event("ObjectRemoved:Delete", None, None, Some(S2))).await;
    for key in &nested_outputs {
        assert!(p.store.object("out", key).is_some(), "{key} was deleted");
    }
}

// Point 7: renditions go before the manifest that lists them, so a retry finishes the job.
#[tokio::test]
async fn a_deletion_that_fails_halfway_is_finished_by_its_retry() {
    let p = pipeline();
    let (ex, _) = upload(&p, x());
    deliver(&p, created(&ex, None, S1)).await;
    let renditions = listed(&stored_manifest(&p).unwrap());
    p.store.delete("in", KEY).await.unwrap();
    p.store
        .before(At::Call(vec![Call::Delete], renditions[1].clone()), |s| {
            s.fail_next([StorageError::Transient("SlowDown".into())])
        });
    let outcome = deliver(&p, event("ObjectRemoved:Delete", None, None, Some(S2))).await;
    assert!(outcome.retry.is_none() && outcome.dead_letters.is_empty());
    check(&p).unwrap();
}

// Point 8: a newer upload that fails for good must not leave the old picture's thumbnails
// standing for it, with nothing saying so.
#[tokio::test]
async fn a_newer_upload_that_fails_for_good_replaces_the_old_thumbnails_with_its_failure() {
    let p = pipeline();
    let (ex, _) = upload(&p, x());
    deliver(&p, created(&ex, None, S1)).await;
    let (ebad, _) = upload(&p, b"not an image at all".to_vec());
    let outcome = deliver(&p, created(&ebad, None, S2)).await;
    assert_eq!(outcome.dead_letters.len(), 1);
    let m = stored_manifest(&p).expect("a manifest records the failure");
    assert_eq!(m["source"]["etag"].as_str(), Some(ebad.as_str()));
    assert!(listed(&m).is_empty());
    assert_eq!(m["failures"][0]["kind"], "unsupported");
    let left: Vec<String> = p
        .store
        .keys("out")
        .into_iter()
        .filter(|k| k != MANIFEST)
        .collect();
    assert!(
        left.is_empty(),
        "the old upload's thumbnails stayed: {left:?}"
    );
}

// Point 8: S3 answers 404 (not 412) to If-Match on a key with no object.
#[tokio::test]
async fn a_manifest_deleted_meanwhile_is_a_conflict_to_retry_not_a_dead_letter() {
    for answer in [
        thumbs::storage::MissingIfMatch::NotFound,
        thumbs::storage::MissingIfMatch::PreconditionFailed,
    ] {
        let p = pipeline();
        *p.store.missing_if_match.lock().unwrap() = answer;
        let (ex, _) = upload(&p, x());
        deliver(&p, created(&ex, None, S1)).await;
        let (ey, _) = upload(&p, y());
        // Someone (an operator, a lifecycle rule) deletes X's outputs before Y's manifest
        // write.
        p.store
            .before(At::Call(vec![Call::Put], MANIFEST.into()), |s| {
                let m: Value =
                    serde_json::from_slice(&s.object("out", MANIFEST).unwrap().body).unwrap();
                for key in listed(&m) {
                    s.remove("out", &key);
                }
                s.remove("out", MANIFEST)
            });
        let outcome = deliver(&p, created(&ey, None, S2)).await;
        assert!(outcome.dead_letters.is_empty(), "{answer:?}: {outcome:?}");
        check(&p).unwrap();
    }
}

// Point 8: a user deleting their upload before it was processed is not an operator's page.
#[tokio::test]
async fn an_upload_deleted_before_it_was_processed_is_acknowledged() {
    let p = pipeline();
    let (ex, _) = upload(&p, x());
    p.store.delete("in", KEY).await.unwrap();
    let outcome = deliver(&p, created(&ex, None, S1)).await;
    assert!(outcome.dead_letters.is_empty(), "{outcome:?}");
    assert!(outcome.retry.is_none());
    check(&p).unwrap();
}

// Point 8: a backfill (or Batch Operations) re-render has no sequencer of its own.
#[tokio::test]
async fn a_backfill_rerender_keeps_the_stored_sequencer() {
    let p = pipeline();
    let (ex, _) = upload(&p, x());
    deliver(&p, created(&ex, None, S2)).await;
    // The key is overwritten and its event lost; backfill enqueues it.
    let (ey, _) = upload(&p, y());
    deliver(&p, event("ObjectCreated:Put", Some(&ey), None, None)).await;
    check(&p).unwrap();
    assert_eq!(stored_manifest(&p).unwrap()["source"]["sequencer"], S2);
}

// Point 11: lifecycle expirations delete uploads too.
#[tokio::test]
async fn lifecycle_expirations_remove_the_outputs() {
    let p = pipeline();
    let (ex, _) = upload(&p, x());
    deliver(&p, created(&ex, None, S1)).await;
    p.store.delete("in", KEY).await.unwrap();
    let outcome = deliver(
        &p,
        event("LifecycleExpiration:Delete", None, None, Some(S2)),
    )
    .await;
    assert!(outcome.dead_letters.is_empty());
    check(&p).unwrap();
}

// Point 12: A-B-A. B (upload Y) is between its HEAD and its manifest write when the key is
// overwritten with X's bytes again and X's second event is handled.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_a_b_a_overwrite_leaves_the_manifest_describing_the_live_object() {
    let p = pipeline();
    let (ex, _) = upload(&p, x());
    deliver(&p, created(&ex, None, S1)).await;
    let (ey, _) = upload(&p, y());
    let gate = Gate::at(&p.store, At::Call(vec![Call::Put], MANIFEST.into()));
    let b = tokio::spawn({
        let p = Arc::clone(&p);
        async move { deliver(&p, created(&ey, None, S2)).await }
    });
    assert!(gate.reached().await);
    upload(&p, x());
    deliver(&p, created(&ex, None, S3)).await;
    gate.release.send(()).unwrap();
    b.await.unwrap();
    check(&p).unwrap();
}

// Point 12: a deletion handled while a render is between its HEAD and its manifest write.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deletion_during_a_render_leaves_no_outputs() {
    let p = pipeline();
    let (ex, _) = upload(&p, x());
    let gate = Gate::at(&p.store, At::Call(vec![Call::Put], MANIFEST.into()));
    let render = tokio::spawn({
        let p = Arc::clone(&p);
        async move { deliver(&p, created(&ex, None, S1)).await }
    });
    assert!(gate.reached().await);
    p.store.delete("in", KEY).await.unwrap();
    deliver(&p, event("ObjectRemoved:Delete", None, None, Some(S2))).await;
    gate.release.send(()).unwrap();
    render.await.unwrap();
    check(&p).unwrap();
}

// Point 12: a crash after the renditions were written, then the upload is deleted: the
// retry must not leave them for good.
#[tokio::test]
async fn renditions_of_a_crashed_delivery_are_removed_by_its_retry() {
    let p = pipeline();
    let (ex, _) = upload(&p, x());
    p.store
        .before(At::Call(vec![Call::Put], MANIFEST.into()), |s| {
            s.fail_next([StorageError::Transient("connection reset".into())])
        });
    let first = p
        .process_batch(vec![message("m", created(&ex, None, S1))], None)
        .await
        .remove(0);
    assert!(first.retry.is_some());
    p.store.delete("in", KEY).await.unwrap();
    deliver(&p, event("ObjectRemoved:Delete", None, None, Some(S2))).await;
    let retry = deliver(&p, created(&ex, None, S1)).await;
    assert!(retry.dead_letters.is_empty(), "{retry:?}");
    check(&p).unwrap();
}

// Point 12: a current manifest whose rendition was deleted is repaired.
#[tokio::test]
async fn a_current_manifest_whose_rendition_was_deleted_is_repaired() {
    let p = pipeline();
    let (ex, _) = upload(&p, x());
    deliver(&p, created(&ex, None, S1)).await;
    let gone = listed(&stored_manifest(&p).unwrap())[0].clone();
    p.store.delete("out", &gone).await.unwrap();
    deliver(&p, created(&ex, None, S1)).await;
    check(&p).unwrap();
}

// Point 12: a stored sequencer is data: a far-future one blocks nothing for good.
#[tokio::test]
async fn a_far_future_stored_sequencer_blocks_neither_uploads_nor_deletions() {
    let p = pipeline();
    let (ex, _) = upload(&p, x());
    deliver(&p, created(&ex, None, "FFFFFFFFFFFFFFFFFFFF")).await;
    let (ey, _) = upload(&p, y());
    deliver(&p, created(&ey, None, S2)).await;
    check(&p).unwrap();
    let mut m = stored_manifest(&p).unwrap();
    m["source"]["sequencer"] = "FFFFFFFFFFFFFFFFFFFF".into();
    p.store
        .insert("out", MANIFEST, serde_json::to_vec(&m).unwrap());
    p.store.delete("in", KEY).await.unwrap();
    deliver(&p, event("ObjectRemoved:Delete", None, None, Some(S4))).await;
    check(&p).unwrap();
}

// The narrow race of the first protocol session: a duplicate delivery of B (upload Y) finds
// Y's manifest current and deletes what it lists as obsolete (X's renditions), while the
// key holds X's bytes again and X's new delivery has just written renditions of those same
// bytes and is about to write its manifest. With renditions named by content alone, the
// clean-up deletes the new manifest's renditions before it lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_duplicates_clean_up_keeps_what_an_a_b_a_rerender_of_the_same_bytes_wrote() {
    let p = pipeline();
    let (ex, _) = upload(&p, x());
    deliver(&p, created(&ex, None, S1)).await;
    let (ey, _) = upload(&p, y());
    deliver(&p, created(&ey, None, S2)).await;
    upload(&p, x());
    let gate = Gate::at(&p.store, At::Call(vec![Call::Put], MANIFEST.into()));
    let again = tokio::spawn({
        let p = Arc::clone(&p);
        let ex = ex.clone();
        async move { deliver(&p, created(&ex, None, S3)).await }
    });
    assert!(gate.reached().await);
    // SQS delivers B's message a second time (at-least-once).
    let duplicate = deliver(&p, created(&ey, None, S2)).await;
    assert!(duplicate.retry.is_none() && duplicate.dead_letters.is_empty());
    gate.release.send(()).unwrap();
    let outcome = again.await.unwrap();
    assert_eq!(outcome.rendered, 1, "{outcome:?}");
    check(&p).unwrap();
}

// The same race from the writer's side, so moving the clean-up to the writer alone would not
// close it: B's writer has written Y's manifest and is about to delete X's renditions (its
// `obsolete`) when X's bytes are uploaded again and fully rendered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_writers_late_clean_up_keeps_what_an_a_b_a_rerender_of_the_same_bytes_wrote() {
    let p = pipeline();
    let (ex, _) = upload(&p, x());
    deliver(&p, created(&ex, None, S1)).await;
    let first = listed(&stored_manifest(&p).unwrap());
    let (ey, _) = upload(&p, y());
    let gate = Gate::at(&p.store, At::Call(vec![Call::Delete], first[0].clone()));
    let b = tokio::spawn({
        let p = Arc::clone(&p);
        async move { deliver(&p, created(&ey, None, S2)).await }
    });
    assert!(gate.reached().await);
    upload(&p, x());
    let again = deliver(&p, created(&ex, None, S3)).await;
    assert_eq!(again.rendered, 1, "{again:?}");
    gate.release.send(()).unwrap();
    b.await.unwrap();
    check(&p).unwrap();
}

/// What a user does to `KEY`, in the model test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    Put(u8),
    /// DeleteObject without a version id (a delete marker when versioned).
    Delete,
    /// DeleteObject with the current version's id (versioned only).
    DeleteCurrentVersion,
    /// DeleteObject with the oldest version's id (versioned only).
    DeleteOldestVersion,
}

fn small(n: u8) -> Vec<u8> {
    fixture(["rgb-patches-adobe.png", "rgb-patches-p3.png"][n as usize])
}

/// Do `act` to the store; returns the S3 event it sends (none when nothing changed).
fn act(store: &MemoryStore, act: Act, seq: usize, versioned: bool) -> Option<Value> {
    let sequencer = format!("0055AED6DCD9028{seq:03X}");
    let live = store.versions("in", KEY);
    match act {
        Act::Put(n) => {
            let body = small(n);
            let etag = MemoryStore::etag_of(&body);
            let version = store.insert("in", KEY, body);
            let version = versioned.then_some(version);
            Some(event(
                "ObjectCreated:Put",
                Some(&etag),
                version.as_deref(),
                Some(&sequencer),
            ))
        }
        Act::Delete => {
            store.remove("in", KEY);
            let marker = store.versions("in", KEY).last().map(|(v, _)| v.clone());
            let name = if versioned {
                "ObjectRemoved:DeleteMarkerCreated"
            } else {
                "ObjectRemoved:Delete"
            };
            Some(event(
                name,
                None,
                marker.filter(|_| versioned).as_deref(),
                Some(&sequencer),
            ))
        }
        Act::DeleteCurrentVersion | Act::DeleteOldestVersion => {
            let (version, _) = if act == Act::DeleteCurrentVersion {
                live.last()?
            } else {
                live.first()?
            };
            store.delete_version("in", KEY, version);
            Some(event(
                "ObjectRemoved:Delete",
                None,
                Some(version),
                Some(&sequencer),
            ))
        }
    }
}

/// A fault injected into one delivery of a schedule.
#[derive(Debug, Clone, Copy)]
enum Fault {
    None,
    /// The delivery's call number `k` fails (a crash, SlowDown, a refused write or delete):
    /// SQS delivers the message again later.
    FailCall(usize),
    /// The next user action happens just before the delivery's call number `k`.
    ActAt(usize),
}

/// Run one schedule: the actions, their events delivered in `order` (interleaved with the
/// actions when `interleaved`), `fault` injected into delivery `faulty`; then every retry.
async fn run_schedule(
    acts: &[Act],
    versioned: bool,
    order: &[usize],
    faulty: usize,
    fault: Fault,
) -> Result<usize, String> {
    let p = pipeline();
    if versioned {
        p.store.enable_versioning("in");
    }
    let mut events = Vec::new();
    let mut next_act = 0;
    // With `ActAt`, deliveries run after each action; otherwise after all of them.
    let interleaved = matches!(fault, Fault::ActAt(_));
    if !interleaved {
        for (i, &a) in acts.iter().enumerate() {
            events.push(act(&p.store, a, i + 1, versioned));
        }
        next_act = acts.len();
    }
    let mut pending: Vec<Value> = Vec::new();
    let mut calls = 0;
    for (n, &i) in order.iter().enumerate() {
        while interleaved && next_act <= i && next_act < acts.len() {
            events.push(act(&p.store, acts[next_act], next_act + 1, versioned));
            next_act += 1;
        }
        let Some(record) = events.get(i).cloned().flatten() else {
            continue;
        };
        let base = p.store.calls.lock().unwrap().len();
        if n == faulty {
            match fault {
                Fault::None => {}
                Fault::FailCall(k) => p.store.before(At::Nth(base + k), |s| {
                    s.fail_next([StorageError::Transient("SlowDown".into())])
                }),
                Fault::ActAt(k) if next_act < acts.len() => {
                    let (a, seq) = (acts[next_act], next_act + 1);
                    let late = Arc::new(std::sync::Mutex::new(None));
                    let slot = Arc::clone(&late);
                    p.store.before(At::Nth(base + k), move |s| {
                        *slot.lock().unwrap() = Some(act(s, a, seq, versioned));
                    });
                    let outcome = p
                        .process_batch(vec![message("m", record.clone())], None)
                        .await;
                    if outcome[0].retry.is_some() {
                        pending.push(record);
                    }
                    if let Some(e) = late.lock().unwrap().take() {
                        events.push(e);
                        next_act += 1;
                        // Its event is delivered at the end, after this one.
                        if let Some(Some(r)) = events.last().cloned() {
                            pending.push(r);
                        }
                    } else {
                        // The delivery made fewer calls: nothing raced it.
                        p.store.hooks_clear();
                    }
                    calls += p.store.calls.lock().unwrap().len() - base;
                    continue;
                }
                Fault::ActAt(_) => {}
            }
        }
        let outcome = p
            .process_batch(vec![message("m", record.clone())], None)
            .await;
        if outcome[0].retry.is_some() {
            pending.push(record);
        }
        if !outcome[0].dead_letters.is_empty() {
            return Err(format!("dead-lettered: {:?}", outcome[0].dead_letters));
        }
        p.store.hooks_clear();
        calls += p.store.calls.lock().unwrap().len() - base;
    }
    while next_act < acts.len() {
        if let Some(e) = act(&p.store, acts[next_act], next_act + 1, versioned) {
            pending.push(e);
        }
        next_act += 1;
    }
    // SQS delivers what was handed back (again while it is handed back).
    for record in pending {
        let outcome = deliver(&p, record).await;
        if outcome.retry.is_some() || !outcome.dead_letters.is_empty() {
            return Err(format!("the retry did not settle: {outcome:?}"));
        }
    }
    check(&p).map(|()| calls)
}

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut all = Vec::new();
    for rest in permutations(n - 1) {
        for at in 0..=rest.len() {
            let mut p = rest.clone();
            p.insert(at, n - 1);
            all.push(p);
        }
    }
    all
}

fn sequences(alphabet: &[Act], len: usize) -> Vec<Vec<Act>> {
    (0..len).fold(vec![vec![]], |acc, _| {
        acc.into_iter()
            .flat_map(|s| {
                alphabet.iter().map(move |&a| {
                    let mut s = s.clone();
                    s.push(a);
                    s
                })
            })
            .collect()
    })
}

/// Every schedule of up to three actions on one key (uploads of two pictures, so A-B-A;
/// deletions, versioned and not), events delivered in every order, then: with no fault; with
/// a failure at every call of every delivery (a crash, SlowDown, a refused write or delete,
/// then SQS's redelivery); and with the next action racing each call of each delivery.
/// By default the faults are injected into schedules of up to two actions (1,038 schedules,
/// about 20 s); `THUMBS_EXHAUSTIVE=1` injects them into three-action schedules too (15,726
/// schedules, about 4.5 minutes on a busy 2-core machine).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_small_schedule_keeps_the_invariants() {
    let exhaustive = std::env::var_os("THUMBS_EXHAUSTIVE").is_some();
    let started = std::time::Instant::now();
    let mut schedules = 0;
    let mut failures = Vec::new();
    for versioned in [false, true] {
        let mut alphabet = vec![Act::Put(0), Act::Put(1), Act::Delete];
        if versioned {
            alphabet.extend([Act::DeleteCurrentVersion, Act::DeleteOldestVersion]);
        }
        for len in 1..=3 {
            for acts in sequences(&alphabet, len) {
                if acts[0] != Act::Put(0) {
                    continue; // Deleting nothing first adds nothing.
                }
                for order in permutations(len) {
                    let mut faults = vec![(0, Fault::None)];
                    for d in (0..len).filter(|_| len <= 2 || exhaustive) {
                        faults.extend((0..12).map(|k| (d, Fault::FailCall(k))));
                        faults.extend((0..12).map(|k| (d, Fault::ActAt(k))));
                    }
                    for (faulty, fault) in faults {
                        schedules += 1;
                        if let Err(why) =
                            run_schedule(&acts, versioned, &order, faulty, fault).await
                        {
                            failures.push(format!(
                                "{acts:?} versioned={versioned} order={order:?} fault={fault:?} at delivery {faulty}: {why}"
                            ));
                        }
                    }
                }
            }
        }
    }
    let mut kinds = std::collections::BTreeMap::new();
    for failure in &failures {
        let kind = [
            "dead-lettered",
            "did not settle",
            "but there is no manifest",
            "the manifest describes",
            "which does not exist",
            "is listed by no manifest",
            "the key was deleted",
        ]
        .into_iter()
        .find(|k| failure.contains(k))
        .unwrap_or("other");
        *kinds.entry(kind).or_insert(0) += 1;
    }
    eprintln!(
        "{schedules} schedules in {:.1} s, {} broke an invariant: {kinds:?}",
        started.elapsed().as_secs_f64(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{}",
        failures[..failures.len().min(20)].join("\n")
    );
}

// ---- Issue 17, two workers call by call (helper 17m) ----
//
// A step-wise driver over the real batch, protocol and report code: two Lambda invocations
// (each one SQS message) run on their own threads, and every S3 call each makes (GET, HEAD,
// rendition PUTs, manifest read and write, deletes) parks in `MemoryStore::step` until the
// scheduler lets it go, so their deliveries interleave call by call in the order a schedule
// says. Faults: a call answered 503 SlowDown, a crash (from a write on, the invocation's calls
// fail and it gives no answer: the message comes back), a missing output bucket; on the SQS
// side a refused SendMessage of a copy or of a letter, and a failed DeleteMessage (the
// message comes back). The queue is modelled as Lambda's event source mapping and SQS use it:
// receive counts, the redrive policy's maxReceiveCount of 5 (a move without a reason is a
// failure of the schedule), copies sent by `QUEUE_URL`. After both invocations, the queue is
// drained (every message delivered until none is left) and the schedule is checked: the key's
// invariants (`check`); no message left or moved by the redrive policy; no dead letter unless
// the bucket is missing, and then every message dead-lettered once (one `LetterId`), with its
// reason.

use std::cell::Cell;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use thumbs::model::{DeadLetter, Resend};
use thumbs::report::{DeadLetterQueue, Letter, Requeue, Sent, LETTER_ID};

thread_local! {
    /// Which of the two workers this thread is; `None` outside the concurrent phase.
    static WORKER: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The redrive policy's maxReceiveCount (cloudformation/template.yaml).
const MAX_RECEIVE_COUNT: u32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum S3Fault {
    None,
    /// The call at this step of the concurrent phase is answered 503 SlowDown.
    SlowDown(usize),
    /// The invocation making the write at this step is killed there.
    Crash(usize),
    /// The output bucket does not exist (deleted, or a wrong OUTPUT_BUCKET).
    MissingBucket,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SqsFault {
    None,
    /// The first SendMessage of a copy is refused.
    RefuseCopy,
    /// The first SendMessage of a dead letter is refused.
    RefuseLetter,
    /// The first DeleteMessage fails: the message comes back.
    FailDelete,
}

#[derive(Debug, Clone)]
struct Queued {
    id: String,
    body: String,
    attempts: u32,
    solo: bool,
    receive_count: u32,
    visible: bool,
}

#[derive(Default)]
struct SqsState {
    queue: Vec<Queued>,
    next: usize,
    letters: Vec<Letter>,
    moved: Vec<String>,
    refuse_copy: bool,
    refuse_letter: bool,
    fail_delete: bool,
}

/// SQS as the Lambda event source mapping and the function's sends see it.
#[derive(Default)]
struct Sqs(Mutex<SqsState>);

impl Sqs {
    fn send(&self, body: String, attempts: u32, solo: bool) {
        let mut s = self.0.lock().unwrap();
        s.next += 1;
        let id = format!("m{}", s.next);
        s.queue.push(Queued {
            id,
            body,
            attempts,
            solo,
            receive_count: 0,
            visible: true,
        });
    }

    /// ReceiveMessage of one message; the redrive policy moves one received too often.
    fn receive(&self) -> Option<Message> {
        let mut s = self.0.lock().unwrap();
        loop {
            let i = s.queue.iter().position(|m| m.visible)?;
            let m = &mut s.queue[i];
            if m.receive_count >= MAX_RECEIVE_COUNT {
                let gone = s.queue.remove(i);
                s.moved.push(gone.body);
                continue;
            }
            m.receive_count += 1;
            m.visible = false;
            return Some(Message {
                id: m.id.clone(),
                body: m.body.clone(),
                receive_count: m.receive_count,
                attempts: m.attempts,
                solo: m.solo,
            });
        }
    }

    /// What Lambda does with the answer: delete what succeeded, let the rest come back.
    fn settle(&self, id: &str, done: bool) {
        let mut s = self.0.lock().unwrap();
        if done && std::mem::take(&mut s.fail_delete) {
            done_or_back(&mut s, id, false);
            return;
        }
        done_or_back(&mut s, id, done);
    }
}

fn done_or_back(s: &mut SqsState, id: &str, done: bool) {
    if done {
        s.queue.retain(|m| m.id != id);
    } else if let Some(m) = s.queue.iter_mut().find(|m| m.id == id) {
        m.visible = true;
    }
}

impl DeadLetterQueue for Sqs {
    async fn send_batch(&self, letters: &[&DeadLetter], _timeout: Duration) -> Sent {
        let mut s = self.0.lock().unwrap();
        letters
            .iter()
            .map(|l| {
                if std::mem::take(&mut s.refuse_letter) {
                    return Err("InternalError: injected".into());
                }
                s.letters.push(Letter::of(l));
                Ok(())
            })
            .collect()
    }
}

impl Requeue for Sqs {
    async fn resend_batch(&self, copies: &[&Resend], _timeout: Duration) -> Sent {
        copies
            .iter()
            .map(|c| {
                if std::mem::take(&mut self.0.lock().unwrap().refuse_copy) {
                    return Err("InternalError: injected".into());
                }
                self.send(c.body.clone(), c.attempts, c.solo);
                Ok(())
            })
            .collect()
    }
}

/// Whose call goes next, and how it is answered.
#[derive(Default)]
struct Turns {
    parked: [Option<Call>; 2],
    finished: [bool; 2],
    killed: [bool; 2],
    go: Option<(usize, Option<StorageError>)>,
}

#[derive(Default)]
struct Scheduler {
    turns: Mutex<Turns>,
    changed: Condvar,
}

impl Scheduler {
    /// A worker's call: park until the scheduler lets it go, then answer as it says.
    fn call(&self, w: usize, call: Call) -> Option<StorageError> {
        let mut t = self.turns.lock().unwrap();
        if t.killed[w] {
            return Some(StorageError::Transient("the invocation was stopped".into()));
        }
        t.parked[w] = Some(call);
        self.changed.notify_all();
        while t.go.as_ref().is_none_or(|(g, _)| *g != w) {
            t = self.changed.wait(t).unwrap();
        }
        let (_, answer) = t.go.take().unwrap();
        t.parked[w] = None;
        self.changed.notify_all();
        answer
    }

    fn finish(&self, w: usize) {
        self.turns.lock().unwrap().finished[w] = true;
        self.changed.notify_all();
    }

    /// Wait until no worker runs (each parked at a call, or finished); the parked calls.
    fn settled(&self) -> std::sync::MutexGuard<'_, Turns> {
        let mut t = self.turns.lock().unwrap();
        while t.go.is_some() || (0..2).any(|w| !t.finished[w] && t.parked[w].is_none()) {
            t = self.changed.wait(t).unwrap();
        }
        t
    }
}

fn model_pipeline() -> Arc<Pipeline<MemoryStore>> {
    let config = PipelineConfig::from_env(&Env::from_pairs([
        ("OUTPUT_BUCKET", "out"),
        ("INPUT_BUCKETS", "in"),
        ("SYNC_DELETES", "true"),
        ("QUEUE_URL", "https://sqs.local/q"),
        // Two renditions: a delivery can stop between them, in fewer calls to interleave.
        ("THUMBS_PRESETS", "thumb=150x150:cover,small=480"),
    ]))
    .unwrap();
    Pipeline::new(MemoryStore::default(), config, 2)
}

/// One Lambda invocation with one message: the batch, then its answer (unless killed).
async fn invoke(
    p: &Arc<Pipeline<MemoryStore>>,
    sqs: &Sqs,
    message: Message,
    killed: &dyn Fn() -> bool,
) {
    let id = message.id.clone();
    let outcomes = p.process_batch(vec![message], None).await;
    if killed() {
        // No answer: the message comes back when its visibility timeout ends.
        sqs.settle(&id, false);
        return;
    }
    let report = thumbs::report::deliver(outcomes, Some(sqs), Some(sqs), None, None).await;
    for done in report.done {
        sqs.settle(&done, true);
    }
    for failed in report.failed {
        sqs.settle(&failed, false);
    }
}

/// A two-worker scenario: what happened before (fully delivered), the user's actions whose
/// events (and duplicates) are queued, and an action that may happen mid-schedule.
struct Scenario {
    name: &'static str,
    versioned: bool,
    before: &'static [Act],
    acts: &'static [Act],
    /// Which events go to the queue, in order, by index into `before` + `acts` (so a
    /// duplicate is an index given twice); the first two are the concurrent invocations'.
    queued: &'static [usize],
    late: Option<Act>,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "two deliveries of one upload",
        versioned: false,
        before: &[],
        acts: &[Act::Put(0)],
        queued: &[0, 0],
        late: None,
    },
    Scenario {
        name: "an upload and its overwrite, out of order",
        versioned: false,
        before: &[],
        acts: &[Act::Put(0), Act::Put(1)],
        queued: &[1, 0],
        late: None,
    },
    Scenario {
        name: "A-B-A: B and the second A side by side",
        versioned: false,
        before: &[Act::Put(0)],
        acts: &[Act::Put(1), Act::Put(0)],
        queued: &[1, 2],
        late: None,
    },
    Scenario {
        name: "A-B-A: a duplicate of B beside the second A",
        versioned: false,
        before: &[Act::Put(0), Act::Put(1)],
        acts: &[Act::Put(0)],
        queued: &[1, 2],
        late: None,
    },
    Scenario {
        name: "a deletion beside a re-upload",
        versioned: false,
        before: &[Act::Put(0)],
        acts: &[Act::Delete, Act::Put(1)],
        queued: &[1, 2],
        late: None,
    },
    Scenario {
        name: "an upload beside its deletion",
        versioned: false,
        before: &[],
        acts: &[Act::Put(0), Act::Delete],
        queued: &[0, 1],
        late: None,
    },
    Scenario {
        name: "versioned: the current version deleted, beside a duplicate of its upload",
        versioned: true,
        before: &[Act::Put(0), Act::Put(1)],
        acts: &[Act::DeleteCurrentVersion],
        queued: &[2, 1],
        late: None,
    },
    Scenario {
        name: "versioned: a delete marker beside a duplicate",
        versioned: true,
        before: &[Act::Put(0)],
        acts: &[Act::Delete],
        queued: &[1, 0],
        late: None,
    },
    Scenario {
        name: "an overwrite and a duplicate, the first bytes uploaded again meanwhile",
        versioned: false,
        before: &[Act::Put(0)],
        acts: &[Act::Put(1)],
        queued: &[1, 0],
        late: Some(Act::Put(0)),
    },
];

/// Which worker goes next: `first` for `i` calls, the other for `j`, then `first` to its
/// end, then the other.
#[derive(Debug, Clone, Copy)]
struct Interleaving {
    first: usize,
    i: usize,
    j: usize,
}

#[derive(Debug, Default)]
struct Ran {
    /// Calls each worker made in the concurrent phase.
    steps: [usize; 2],
    /// The calls of the concurrent phase, in order, by worker.
    trace: Vec<(usize, Call)>,
}

fn run_two_workers(
    sc: &Scenario,
    order: Interleaving,
    s3: S3Fault,
    sqs_fault: SqsFault,
    late_at: Option<usize>,
) -> (Ran, Result<(), String>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let p = model_pipeline();
    if sc.versioned {
        p.store.enable_versioning("in");
    }
    let mut events = Vec::new();
    for (n, &a) in sc.before.iter().enumerate() {
        let e = act(&p.store, a, n + 1, sc.versioned);
        if let Some(e) = &e {
            rt.block_on(deliver(&p, e.clone()));
        }
        events.push(e);
    }
    for (n, &a) in sc.acts.iter().enumerate() {
        events.push(act(&p.store, a, sc.before.len() + n + 1, sc.versioned));
    }
    let sqs = Arc::new(Sqs::default());
    for &i in sc.queued {
        let e = events[i].clone().expect("a queued action sends an event");
        sqs.send(json!({"Records": [e]}).to_string(), 0, false);
    }
    {
        let mut s = sqs.0.lock().unwrap();
        s.refuse_copy = sqs_fault == SqsFault::RefuseCopy;
        s.refuse_letter = sqs_fault == SqsFault::RefuseLetter;
        s.fail_delete = sqs_fault == SqsFault::FailDelete;
    }
    let missing = s3 == S3Fault::MissingBucket;
    let sched = Arc::new(Scheduler::default());
    *p.store.step.lock().unwrap() = Some(Arc::new({
        let sched = Arc::clone(&sched);
        move |call, key: &str| {
            let answer = match WORKER.with(Cell::get) {
                Some(w) => sched.call(w, call),
                None => None,
            };
            if missing && key.starts_with("thumbnails/") {
                return Some(StorageError::Other(
                    "NoSuchBucket: the specified bucket does not exist".into(),
                ));
            }
            answer
        }
    }));
    let messages = [sqs.receive().unwrap(), sqs.receive().unwrap()];
    let workers: Vec<_> = messages
        .into_iter()
        .enumerate()
        .map(|(w, message)| {
            let (p, sqs, sched) = (Arc::clone(&p), Arc::clone(&sqs), Arc::clone(&sched));
            std::thread::spawn(move || {
                WORKER.with(|c| c.set(Some(w)));
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let killed = || sched.turns.lock().unwrap().killed[w];
                rt.block_on(invoke(&p, &sqs, message, &killed));
                sched.finish(w);
            })
        })
        .collect();
    let mut ran = Ran::default();
    let phases = [
        (order.first, order.i),
        (1 - order.first, order.j),
        (order.first, usize::MAX),
        (1 - order.first, usize::MAX),
    ];
    let (mut phase, mut in_phase) = (0, 0);
    let mut late_event = None;
    loop {
        let mut t = sched.settled();
        if t.finished.iter().all(|&f| f) {
            break;
        }
        let w = loop {
            let (w, n) = phases[phase];
            if !t.finished[w] && in_phase < n {
                break w;
            }
            phase += 1;
            in_phase = 0;
        };
        in_phase += 1;
        let step = ran.trace.len();
        let call = t.parked[w].expect("parked");
        ran.trace.push((w, call));
        ran.steps[w] += 1;
        if late_at == Some(step) {
            if let Some(a) = sc.late {
                let seq = sc.before.len() + sc.acts.len() + 1;
                late_event = act(&p.store, a, seq, sc.versioned);
            }
        }
        let answer = match s3 {
            S3Fault::SlowDown(s) if s == step => Some(StorageError::Transient(
                "SlowDown: please reduce your request rate".into(),
            )),
            S3Fault::Crash(s) if s == step => {
                t.killed[w] = true;
                Some(StorageError::Transient("the invocation was stopped".into()))
            }
            _ => None,
        };
        t.go = Some((w, answer));
        sched.changed.notify_all();
    }
    for worker in workers {
        worker.join().unwrap();
    }
    if let Some(e) = late_event {
        sqs.send(json!({"Records": [e]}).to_string(), 0, false);
    }
    // SQS delivers what is left, one invocation at a time, until nothing is.
    let mut invocations = 0;
    while let Some(message) = sqs.receive() {
        invocations += 1;
        if invocations > 40 {
            return (ran, Err("the queue never emptied".into()));
        }
        rt.block_on(invoke(&p, &sqs, message, &|| false));
    }
    (ran, judge(&p, &sqs, sc, missing))
}

/// The schedule's end state, as the module comment of this block says.
fn judge(p: &Pipeline<MemoryStore>, sqs: &Sqs, sc: &Scenario, missing: bool) -> Result<(), String> {
    let s = sqs.0.lock().unwrap();
    if !s.queue.is_empty() {
        return Err(format!("messages left in the queue: {:?}", s.queue));
    }
    if !s.moved.is_empty() {
        return Err(format!(
            "moved by the redrive policy without a reason: {:?}",
            s.moved
        ));
    }
    let attribute = |l: &Letter, name: &str| {
        l.attributes
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    if !missing {
        if let Some(l) = s.letters.first() {
            return Err(format!(
                "dead-lettered: {} {}",
                attribute(l, "ErrorKind"),
                attribute(l, "ErrorMessage")
            ));
        }
        return check(p);
    }
    // Every queued message dead-lettered once, with its reason.
    let mut ids: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        Default::default();
    for l in &s.letters {
        if attribute(l, "ErrorMessage").is_empty() || attribute(l, "ErrorKind").is_empty() {
            return Err(format!("a letter without its reason: {l:?}"));
        }
        ids.entry(l.body.clone())
            .or_default()
            .insert(attribute(l, LETTER_ID));
    }
    let queued = sc.queued.len();
    let letters: usize = ids.values().map(|v| v.len()).sum();
    if letters != queued {
        return Err(format!(
            "{queued} messages, {letters} distinct letters: {ids:?}"
        ));
    }
    Ok(())
}

/// Interleavings of two workers in every scenario (985 schedules, about 40 s; 16,959 and about
/// 16 minutes with `THUMBS_EXHAUSTIVE=1`): `first` runs `i` calls (every `i`), then
/// the other runs `j` (1, or to its end; every `j` with `THUMBS_EXHAUSTIVE=1`), then the
/// rest, each with no fault. Where `first` stopped after its first call or half-way and the
/// other runs to its end (every interleaving with `THUMBS_EXHAUSTIVE=1`), also with a refused
/// copy, a failed DeleteMessage, a SlowDown at every call, a crash at every write, and the
/// late action at every step. And a missing output bucket with a refused letter.
#[test]
fn two_workers_interleaved_call_by_call_keep_the_invariants() {
    let exhaustive = std::env::var_os("THUMBS_EXHAUSTIVE").is_some();
    let started = std::time::Instant::now();
    let mut schedules = 0;
    let mut failures: Vec<String> = Vec::new();
    let mut run =
        |sc: &Scenario, o: Interleaving, s3: S3Fault, q: SqsFault, late: Option<usize>| {
            schedules += 1;
            let (ran, result) = run_two_workers(sc, o, s3, q, late);
            if let Err(why) = result {
                failures.push(format!(
                    "[{}] {o:?} s3={s3:?} sqs={q:?} late_at={late:?} trace={:?}: {why}",
                    sc.name, ran.trace
                ));
            }
            ran
        };
    let only = std::env::var("THUMBS_SCENARIO").ok();
    for sc in SCENARIOS
        .iter()
        .filter(|sc| only.as_ref().is_none_or(|o| sc.name.contains(o.as_str())))
    {
        for first in 0..2 {
            // With no switch at all, one worker runs whole, then the other.
            let whole = run(
                sc,
                Interleaving {
                    first,
                    i: usize::MAX,
                    j: 0,
                },
                S3Fault::None,
                SqsFault::None,
                None,
            );
            let other = whole.steps[1 - first];
            let mine = whole.steps[first];
            for i in 0..=mine {
                for j in (1..=other).filter(|&j| exhaustive || j == 1 || j == other) {
                    let o = Interleaving { first, i, j };
                    run(sc, o, S3Fault::None, SqsFault::None, None);
                    // By default the faults go into two of these: `first` stopped after its
                    // first call, or half-way, while the other runs to its end.
                    if !exhaustive && (j != other || (i != 1 && i != mine / 2)) {
                        continue;
                    }
                    for q in [SqsFault::RefuseCopy, SqsFault::FailDelete] {
                        run(sc, o, S3Fault::None, q, None);
                    }
                    let calls = whole.steps[0] + whole.steps[1] + 2;
                    for s in 0..calls {
                        let ran = run(sc, o, S3Fault::SlowDown(s), SqsFault::None, None);
                        if s >= ran.trace.len() {
                            break;
                        }
                        if matches!(ran.trace[s].1, Call::Put | Call::Delete) {
                            run(sc, o, S3Fault::Crash(s), SqsFault::None, None);
                        }
                        if sc.late.is_some() {
                            run(sc, o, S3Fault::None, SqsFault::None, Some(s));
                        }
                    }
                }
            }
        }
        run(
            sc,
            Interleaving {
                first: 0,
                i: 3,
                j: 3,
            },
            S3Fault::MissingBucket,
            SqsFault::RefuseLetter,
            None,
        );
    }
    let mut kinds = std::collections::BTreeMap::new();
    for failure in &failures {
        let scenario = &failure[..failure.find(']').unwrap_or(0) + 1];
        let fault = if failure.contains("s3=None") {
            ""
        } else {
            failure
                .split(" s3=")
                .nth(1)
                .unwrap_or("")
                .split(['(', ' '])
                .next()
                .unwrap_or("")
        };
        let why = failure.rsplit("]: ").next().unwrap_or("");
        let why: String = why
            .split(|c: char| c == ':' || c.is_ascii_digit())
            .next()
            .unwrap_or("")
            .chars()
            .take(40)
            .collect();
        let kind = kinds
            .entry(format!("{scenario} {fault} {why}"))
            .or_insert((0, failure.clone()));
        kind.0 += 1;
    }
    eprintln!(
        "{schedules} two-worker schedules in {:.1} s, {} broke an invariant: {kinds:#?}",
        started.elapsed().as_secs_f64(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{}",
        failures[..failures.len().min(15)].join("\n")
    );
}
