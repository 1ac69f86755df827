//! The one failure type the pipeline reports: what went wrong, and whether a retry can help.
//! Render errors convert here; storage errors where they are defined, in `storage`.

use super::RenderError;

/// A failed record. `kind` is short and stable (logs, metrics, the DLQ's `ErrorKind`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct Failure {
    pub kind: &'static str,
    pub message: String,
    /// Retryable failures go back to the queue; permanent ones to the dead-letter queue at once.
    pub retryable: bool,
}

impl Failure {
    pub fn permanent(kind: &'static str, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
            retryable: false,
        }
    }

    pub fn retryable(kind: &'static str, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
            retryable: true,
        }
    }
}

impl From<RenderError> for Failure {
    fn from(e: RenderError) -> Self {
        Failure {
            kind: e.kind(),
            retryable: e.is_retryable(),
            message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_incomplete_render_is_retried_when_every_missing_rendition_was_a_shortage() {
        use crate::model::{FailedRendition, Format, Probe, Rendered};
        let incomplete = |errors: Vec<RenderError>| {
            let rendered = Rendered {
                source: Probe {
                    format: "jpeg",
                    width: 1,
                    height: 1,
                    cmyk: false,
                    icc: false,
                    wide: false,
                },
                source_bytes: 1,
                placeholder: String::new(),
                renditions: Vec::new(),
                failed: errors
                    .into_iter()
                    .map(|error| FailedRendition {
                        preset: "large".into(),
                        format: Format::Webp,
                        error,
                    })
                    .collect(),
            };
            Failure::from(rendered.incomplete().expect("some failed"))
        };
        let shortage = || RenderError::Resources("out of memory".into());
        let short = incomplete(vec![shortage(), shortage()]);
        assert_eq!(short.kind, "incomplete");
        assert!(short.retryable, "{short}");
        let encode = RenderError::Encode {
            format: Format::Webp,
            message: "too big".into(),
        };
        assert!(!incomplete(vec![shortage(), encode]).retryable);
    }

    #[test]
    fn render_resource_shortage_is_retried_and_bad_files_are_not() {
        let oom = Failure::from(RenderError::Resources("out of memory".into()));
        assert!(oom.retryable);
        assert_eq!(oom.kind, "out_of_resources");
        assert!(!Failure::from(RenderError::Corrupt("bad".into())).retryable);
        assert!(!Failure::from(RenderError::Internal("panic".into())).retryable);
    }
}
