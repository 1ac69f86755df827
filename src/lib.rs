//! thumbs: S3 upload -> SQS -> thumbnails with libvips -> S3.
//!
//! Data flows one way: `notification` (SQS body -> object references) -> `batch` (one outcome
//! per message; each record `fetch` -> `render` -> `store`, through `storage`) -> `report`
//! (dead letters, the batch response). What the stages hand each other lives in `model`, so no
//! stage imports another for a type. The `shell` modules (Lambda, worker, local files) are
//! thin; nothing in `render` knows about AWS and nothing in the shells knows about libvips
//! (`render::thread_shutdown` is how they end a render thread).

// Unsafe code lives in `vips` only, where each block says why it is sound.
#![deny(unsafe_code)]

pub mod backfill;
pub mod batch;
pub mod batch_operations;
pub mod config;
pub mod digest;
pub mod display;
pub mod dlq;
pub mod event_body;
pub mod events;
pub mod fetch;
pub mod model;
pub mod notification;
pub mod outputs;
pub mod progress;
pub mod queue;
pub mod render;
pub mod report;
pub mod shell;
pub mod storage;
pub mod store;
pub mod telemetry;
pub mod vips;
