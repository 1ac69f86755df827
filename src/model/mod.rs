//! The shared types: what the stages hand each other. They live here, not in the stage that
//! happens to make them, so every stage depends on `model` and none on another for a type.

mod failure;
mod manifest;
mod message;
mod object;
mod preset;
mod rendered;
mod rules;
mod settings;

pub use failure::Failure;
pub use manifest::{
    Deleted, Manifest, ManifestFailure, ManifestRendition, ManifestSource, Tombstone,
};
pub use message::{
    DeadLetter, Message, MessageOutcome, Resend, ATTEMPTS_ATTRIBUTE, SOLO_ATTRIBUTE,
};
pub use object::{sequencer_is_newer, ObjectRef};
pub use preset::{
    parse_formats, parse_presets, parse_quality, Fit, Format, Preset, PresetError, Quality,
    DEFAULT_FORMATS, DEFAULT_PRESETS, DEFAULT_QUALITY, MAX_SIDE,
};
pub use rendered::{FailedRendition, Probe, RenderError, Rendered, Rendition};
pub use rules::{parse_rules, Applied, Parsed, Rule, RuleError, Rules, DEFAULT_RULE};
pub use settings::{Limits, RenderSettings, Strategy};
