//! Logs (tracing; JSON on Lambda) and metrics in CloudWatch Embedded Metric Format (EMF):
//! one JSON line on stdout per original, which CloudWatch turns into metrics with no API calls.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tracing_subscriber::EnvFilter;

use crate::model::Failure;

static EMF: OnceLock<bool> = OnceLock::new();
/// The `Stack` dimension of every metric (`THUMBS_STACK`, the CloudFormation stack's name),
/// so that two stacks in one account and region keep their metrics and alarms apart.
static STACK: OnceLock<String> = OnceLock::new();

/// The `Stack` dimension's value when `THUMBS_STACK` is not set (a worker run by hand).
pub const NO_STACK: &str = "none";

/// Set up logging once. On Lambda (or with `AWS_LAMBDA_LOG_FORMAT=JSON`) logs are JSON lines;
/// the level comes from `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else `info`. Metrics are
/// written on Lambda, or anywhere with `THUMBS_METRICS=emf`, with the dimension `Stack` from
/// `THUMBS_STACK`.
pub fn init() {
    let on_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let json = on_lambda
        || std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let filter = match std::env::var("AWS_LAMBDA_LOG_LEVEL") {
        Ok(level) => EnvFilter::new(level.to_ascii_lowercase().replace("fatal", "error")),
        Err(_) => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // Another subscriber may already be set (tests); keeping it is fine.
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder.compact().try_init()
    };
    let _ = EMF.set(on_lambda || std::env::var("THUMBS_METRICS").is_ok_and(|m| m == "emf"));
    let stack = std::env::var("THUMBS_STACK")
        .ok()
        .filter(|s| !s.trim().is_empty());
    let _ = STACK.set(stack.unwrap_or_else(|| NO_STACK.into()));
}

fn emit(dimensions: &[&str], values: Value, metrics: &[(&str, &str)]) {
    if !EMF.get().copied().unwrap_or(false) {
        return;
    }
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let stack = STACK.get().map_or(NO_STACK, String::as_str);
    println!(
        "{}",
        emf_line(stack, timestamp, dimensions, values, metrics)
    );
}

/// One EMF line: `Stack` first in the dimensions, then `dimensions`.
fn emf_line(
    stack: &str,
    timestamp: u64,
    dimensions: &[&str],
    values: Value,
    metrics: &[(&str, &str)],
) -> Value {
    let dimensions: Vec<&str> = std::iter::once("Stack")
        .chain(dimensions.iter().copied())
        .collect();
    let mut line = json!({
        "_aws": {
            "Timestamp": timestamp,
            "CloudWatchMetrics": [{
                "Namespace": "thumbs",
                "Dimensions": [dimensions],
                "Metrics": metrics.iter().map(|(name, unit)| json!({"Name": name, "Unit": unit})).collect::<Vec<_>>(),
            }],
        },
        "Stack": stack,
    });
    if let (Some(line), Value::Object(values)) = (line.as_object_mut(), values) {
        line.extend(values);
    }
    line
}

pub fn record_rendered(bytes_in: u64, bytes_out: u64, elapsed: Duration) {
    emit(
        &["Outcome"],
        json!({
            "Outcome": "rendered",
            "Images": 1,
            "BytesIn": bytes_in,
            "BytesOut": bytes_out,
            "ProcessingTime": elapsed.as_secs_f64() * 1000.0,
        }),
        &[
            ("Images", "Count"),
            ("BytesIn", "Bytes"),
            ("BytesOut", "Bytes"),
            ("ProcessingTime", "Milliseconds"),
        ],
    );
}

pub fn record_failure(failure: &Failure) {
    emit(
        &["Outcome", "ErrorKind"],
        json!({
            "Outcome": if failure.retryable { "retry" } else { "dead_letter" },
            "ErrorKind": failure.kind,
            "Failures": 1,
        }),
        &[("Failures", "Count")],
    );
}

/// A key or other outside text made safe for a log line (see `display::escaped`).
pub use crate::display::escaped as printable;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_carries_its_stack_as_a_dimension() {
        let line = |stack| {
            emf_line(
                stack,
                1,
                &["Outcome"],
                json!({"Outcome": "rendered", "Images": 1}),
                &[("Images", "Count")],
            )
        };
        let (a, b) = (line("thumbs-a"), line("thumbs-b"));
        let metrics = &a["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(metrics["Dimensions"], json!([["Stack", "Outcome"]]));
        assert_eq!(metrics["Namespace"], "thumbs");
        assert_eq!(
            (&a["Stack"], &b["Stack"]),
            (&json!("thumbs-a"), &json!("thumbs-b"))
        );
        assert_eq!(a["Outcome"], "rendered");
    }
}
