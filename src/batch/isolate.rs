//! The concurrency under every step: each future its own task, so a panic or the deadline
//! costs only the task it hits.

use std::collections::HashMap;
use std::time::Instant;

use tokio::task::JoinSet;

/// Why a task gave no outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Interrupted {
    Panicked(String),
    /// Still running at the cutoff: stopped.
    Unfinished,
}

/// Run every future as its own task, so a panic in one loses none of the others; results
/// come back in order. Tasks still running at `cutoff` are stopped (their writes are
/// idempotent, so a retry may redo them).
pub(super) async fn run_isolated<F>(
    work: impl IntoIterator<Item = F>,
    cutoff: Option<Instant>,
) -> Vec<Result<F::Output, Interrupted>>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let mut tasks = JoinSet::new();
    let mut index_of = HashMap::new();
    for (index, future) in work.into_iter().enumerate() {
        index_of.insert(tasks.spawn(future).id(), index);
    }
    let mut results: Vec<Result<F::Output, Interrupted>> = (0..index_of.len())
        .map(|_| Err(Interrupted::Unfinished))
        .collect();
    loop {
        let joined = match cutoff {
            Some(cutoff) => {
                match tokio::time::timeout_at(cutoff.into(), tasks.join_next_with_id()).await {
                    Ok(joined) => joined,
                    Err(_) => break,
                }
            }
            None => tasks.join_next_with_id().await,
        };
        match joined {
            None => break,
            Some(Ok((id, output))) => results[index_of[&id]] = Ok(output),
            Some(Err(e)) => results[index_of[&e.id()]] = Err(Interrupted::Panicked(e.to_string())),
        }
    }
    tasks.abort_all();
    results
}
