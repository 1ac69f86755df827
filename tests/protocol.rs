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
