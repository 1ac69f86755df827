//! Configuration, read once from the environment into validated structs.

use std::collections::HashMap;

use crate::model::{
    parse_formats, parse_presets, parse_quality, parse_rules, Applied, Limits, PresetError,
    RenderSettings, Rules, Strategy, DEFAULT_FORMATS, DEFAULT_PRESETS, DEFAULT_QUALITY,
};

/// The environment variables we read, with what they mean; shown by `thumbs --help`.
pub const ENV_HELP: &str = "\
Environment:
  THUMBS_PRESETS    presets, NAME=W | NAME=WxH | NAME=WxH:cover, comma-separated
                    [default: thumb=150x150:cover,small=480,large=1080]
  THUMBS_FORMATS    output formats: webp, jpeg, avif, comma-separated [default: webp]
  THUMBS_QUALITY    per-format quality 1-100 [default: webp=80,jpeg=82,avif=50]
  THUMBS_RULES      rules per folder, first match wins: `NAME=PREFIX presets=... [formats=...]
                    [quality=...]`, separated by `;` or new lines; PREFIX lies inside
                    INPUT_PREFIX; keys no rule names get the default rule (THUMBS_PRESETS,
                    THUMBS_FORMATS, THUMBS_QUALITY, or a last rule `default presets=...`)
                    [default: none]
  THUMBS_STRATEGY   shared (decode once for all presets) | per-preset [default: shared]
  MAX_INPUT_BYTES   largest input accepted, bytes [default: 67108864]
  MAX_INPUT_PIXELS  largest input accepted, width x height from the header [default: 64000000]
  MAX_INTERLACED_PIXELS, MAX_HEIF_PIXELS, MAX_GIF_PIXELS   lower limits for progressive JPEG and
                    interlaced PNG, HEIC/AVIF, GIF (they decode whole) [default: 40000000,
                    50000000, 16000000]
  MAX_INPUT_WIDTH, MAX_INPUT_HEIGHT   widest and tallest input accepted (as stored), pixels
                    [default: 16384, 65535]
  INPUT_BUCKETS     worker/lambda: the buckets whose uploads are processed, comma-separated
                    (required; records from any other bucket are dead-lettered)
  OUTPUT_BUCKET     worker/lambda: bucket the renditions go to (required)
  OUTPUT_PREFIX     worker/lambda: key prefix of the renditions [default: thumbnails/]
  INPUT_PREFIX      worker/lambda: only keys under it are processed [default: uploads/]
  OUTPUT_LAYOUT     worker/lambda: key = OUTPUT_PREFIX<key below INPUT_PREFIX>/, bucket =
                    OUTPUT_PREFIX<bucket>/<key below INPUT_PREFIX>/ (required with several
                    INPUT_BUCKETS; changing it moves every output: see README) [default: key]
  DLQ_URL           worker/lambda: queue that gets permanent failures at once, with the reason
                    (unset: they are left for the queue's redrive policy)
  MAX_RECEIVES      worker/lambda: the queue's maxReceiveCount; on the last receive a failure
                    that would be retried is dead-lettered with its reason instead [default: 3]
  THUMBS_CONCURRENCY  worker/lambda: originals processed at once [default: number of cores]
  TIME_RESERVE_SECONDS  lambda: start no new original with less time than this left, and never
                    more than half the time the invocation had; the rest goes back to the queue
                    without using up a receive [default: 10]
  QUEUE_URL         the queue consumed (the worker's --queue-url). A message that must come back
                    is sent to it again as a new message carrying its attempt count (attribute
                    ThumbsAttempts), so hand-backs for lack of time and crashes of a whole
                    invocation or worker use up no attempt (Lambda with it unset: it comes back
                    through the visibility timeout, and every receive counts)
  MESSAGE_TIMEOUT_SECONDS  worker: a message not finished in this time fails (kind `timeout`,
                    retried, dead-lettered on its last receive) [default: 900]
  SYNC_DELETES      worker/lambda: true = deleting an original deletes its renditions [default: false]
  EVENT_BUS         worker/lambda: the EventBridge bus (name or ARN) that gets an event when an
                    upload is settled (Thumbnails Ready, Upload Refused, Thumbnails Deleted);
                    unset or empty: no events [default: none]
  EVENT_SOURCE      the events' `source` (the template sets thumbs.<stack name>) [default: thumbs]
  CACHE_CONTROL     Cache-Control of the renditions, whose names change with their content
                    [default: public, max-age=31536000, immutable]
  MANIFEST_CACHE_CONTROL  Cache-Control of manifest.json, rewritten on re-upload [default: no-cache]
  THUMBS_METRICS    worker: `emf` = write CloudWatch EMF metric lines as on Lambda
  THUMBS_STACK      worker/lambda: the metrics' `Stack` dimension (the template sets the stack's
                    name) [default: none]
  VIPS_CONCURRENCY  libvips threads per image [default: one per core]
  VIPSHOME          where libvips looks for its modules (/opt in the Lambda layer)
  LIBHEIF_PLUGIN_PATH  where libheif looks for its codec plugins (/opt/lib/libheif/plugins in the layer)
  AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_SQS, AWS_REGION, ...
                    the standard AWS SDK variables (point them at a local emulator to test)
  RUST_LOG, AWS_LAMBDA_LOG_LEVEL, AWS_LAMBDA_LOG_FORMAT   log filter and format";

pub const DEFAULT_OUTPUT_PREFIX: &str = "thumbnails/";
pub const DEFAULT_INPUT_PREFIX: &str = "uploads/";
/// Renditions are named by a digest of their source and settings, so they never change.
pub const DEFAULT_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";
/// The manifest keeps its name across re-uploads: caches must ask again every time.
pub const DEFAULT_MANIFEST_CACHE_CONTROL: &str = "no-cache";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} must be set")]
    Missing(&'static str),
    #[error("{var}: {reason}")]
    Invalid { var: &'static str, reason: String },
}

/// A snapshot of the environment, so parsing is testable without touching process state.
pub struct Env(HashMap<String, String>);

impl Env {
    pub fn from_process() -> Self {
        Env(std::env::vars().collect())
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Env(pairs
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    /// The same environment with `var` set to `value` (a command-line option over it).
    pub fn with(mut self, var: &str, value: &str) -> Self {
        self.0.insert(var.to_string(), value.to_string());
        self
    }

    /// The value of `var`, with surrounding blanks trimmed; empty counts as unset.
    fn get(&self, var: &str) -> Option<&str> {
        self.0.get(var).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    fn parse<T: std::str::FromStr>(&self, var: &'static str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(var) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|e| ConfigError::Invalid {
                var,
                reason: format!("`{v}`: {e}"),
            }),
        }
    }
}

fn invalid(var: &'static str) -> impl Fn(PresetError) -> ConfigError {
    move |e| ConfigError::Invalid {
        var,
        reason: e.to_string(),
    }
}

/// The engine's settings from `THUMBS_*` and `MAX_INPUT_*`.
pub fn render_settings(env: &Env) -> Result<RenderSettings, ConfigError> {
    let positive = |var: &'static str, default: u64| -> Result<u64, ConfigError> {
        match env.parse(var, default)? {
            0 => Err(ConfigError::Invalid {
                var,
                reason: "must be greater than 0".into(),
            }),
            n => Ok(n),
        }
    };
    let limits = Limits::default();
    Ok(RenderSettings {
        presets: parse_presets(env.get("THUMBS_PRESETS").unwrap_or(DEFAULT_PRESETS))
            .map_err(invalid("THUMBS_PRESETS"))?,
        formats: parse_formats(env.get("THUMBS_FORMATS").unwrap_or(DEFAULT_FORMATS))
            .map_err(invalid("THUMBS_FORMATS"))?,
        quality: parse_quality(env.get("THUMBS_QUALITY").unwrap_or(DEFAULT_QUALITY))
            .map_err(invalid("THUMBS_QUALITY"))?,
        limits: Limits {
            max_bytes: positive("MAX_INPUT_BYTES", limits.max_bytes)?,
            max_pixels: positive("MAX_INPUT_PIXELS", limits.max_pixels)?,
            max_pixels_interlaced: positive("MAX_INTERLACED_PIXELS", limits.max_pixels_interlaced)?,
            max_pixels_heif: positive("MAX_HEIF_PIXELS", limits.max_pixels_heif)?,
            max_pixels_gif: positive("MAX_GIF_PIXELS", limits.max_pixels_gif)?,
            max_width: positive("MAX_INPUT_WIDTH", limits.max_width)?,
            max_height: positive("MAX_INPUT_HEIGHT", limits.max_height)?,
        },
        strategy: env.parse("THUMBS_STRATEGY", Strategy::default())?,
    })
}

/// `INPUT_PREFIX`, checked: without this a misconfiguration could make the function eat its
/// own output.
pub fn input_prefix(env: &Env) -> Result<String, ConfigError> {
    let input_prefix = env.get("INPUT_PREFIX").unwrap_or(DEFAULT_INPUT_PREFIX);
    if input_prefix.is_empty() || !input_prefix.ends_with('/') {
        return Err(ConfigError::Invalid {
            var: "INPUT_PREFIX",
            reason: format!("`{input_prefix}` must be non-empty and end with `/`"),
        });
    }
    Ok(input_prefix.to_string())
}

/// The settings of each kind of upload: `THUMBS_RULES` over the engine's settings. Returns the
/// prefixed rules and the default rule's settings (`THUMBS_PRESETS`... or the text's
/// `default` rule, never both). Every prefix must lie inside `input_prefix`: a key outside
/// it never reaches the function, so such a rule could never apply.
pub fn rules(env: &Env, input_prefix: &str) -> Result<(Rules, RenderSettings), ConfigError> {
    let bad = |reason: String| ConfigError::Invalid {
        var: "THUMBS_RULES",
        reason,
    };
    let base = render_settings(env)?;
    let Some(text) = env.get("THUMBS_RULES") else {
        return Ok((Rules::default(), base));
    };
    let parsed = parse_rules(text).map_err(|e| bad(e.to_string()))?;
    let globals = ["THUMBS_PRESETS", "THUMBS_FORMATS", "THUMBS_QUALITY"];
    if let Some(var) = globals.iter().find(|v| env.get(v).is_some()) {
        if parsed.default.is_some() {
            return Err(bad(format!(
                "its rule `default` and {var} both set the default rule: keep one"
            )));
        }
    }
    let (rules, default) = parsed.into_rules(base).map_err(|e| bad(e.to_string()))?;
    if let Some(rule) = rules.0.iter().find(|r| !r.prefix.starts_with(input_prefix)) {
        return Err(bad(format!(
            "rule `{}`: prefix `{}` is outside INPUT_PREFIX `{input_prefix}`: its keys never reach the function",
            rule.name, rule.prefix
        )));
    }
    Ok((rules, default))
}

/// One per core: rendering is CPU-bound.
pub fn default_concurrency() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Where an original's outputs go below `OUTPUT_PREFIX` (`OUTPUT_LAYOUT`): chosen, never
/// derived from the number of input buckets, so adding a bucket moves no output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputLayout {
    /// `<key below INPUT_PREFIX>/`
    #[default]
    Key,
    /// `<bucket>/<key below INPUT_PREFIX>/`
    Bucket,
}

impl std::str::FromStr for OutputLayout {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "key" => Ok(OutputLayout::Key),
            "bucket" => Ok(OutputLayout::Bucket),
            _ => Err("expected `key` or `bucket`".into()),
        }
    }
}

/// Settings of the worker and the Lambda function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineConfig {
    /// The only buckets whose records are trusted.
    pub input_buckets: Vec<String>,
    pub output_bucket: String,
    pub output_prefix: String,
    pub input_prefix: String,
    pub output_layout: OutputLayout,
    pub dlq_url: Option<String>,
    pub cache_control: String,
    pub manifest_cache_control: String,
    /// The queue's maxReceiveCount: the receive on which retrying ends.
    pub max_receives: u32,
    /// On Lambda, no original is started with less time than this left (at most half the
    /// invocation's time: see `batch::start_by`).
    pub time_reserve: std::time::Duration,
    /// The queue the Lambda function consumes: messages that come back are sent to it again.
    pub queue_url: Option<String>,
    /// The worker's limit on one message (the Lambda function's is its deadline).
    pub message_timeout: std::time::Duration,
    pub sync_deletes: bool,
    /// Originals fetched and rendered at once.
    pub concurrency: usize,
    /// The default rule's settings, and every rule's limits and strategy.
    pub render: RenderSettings,
    /// `THUMBS_RULES`: the settings of keys under given prefixes (see [`Self::rule_for`]).
    pub rules: Rules,
    /// Where settled uploads are announced (`EVENT_BUS`, `EVENT_SOURCE`).
    pub events: EventsConfig,
}

impl PipelineConfig {
    /// The rule the original at `key` follows: its settings make its renditions, name them
    /// and fingerprint them.
    pub fn rule_for(&self, key: &str) -> Applied<'_> {
        self.rules.for_key(key, &self.render)
    }
}

impl PipelineConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let output_bucket = env
            .get("OUTPUT_BUCKET")
            .ok_or(ConfigError::Missing("OUTPUT_BUCKET"))?
            .to_string();
        let input_buckets: Vec<String> = env
            .get("INPUT_BUCKETS")
            .ok_or(ConfigError::Missing("INPUT_BUCKETS"))?
            .split(',')
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .map(str::to_string)
            .collect();
        if input_buckets.is_empty() {
            return Err(ConfigError::Missing("INPUT_BUCKETS"));
        }
        let output_prefix = env.get("OUTPUT_PREFIX").unwrap_or(DEFAULT_OUTPUT_PREFIX);
        let input_prefix = &input_prefix(env)?;
        if !output_prefix.is_empty() && !output_prefix.ends_with('/') {
            return Err(ConfigError::Invalid {
                var: "OUTPUT_PREFIX",
                reason: format!("`{output_prefix}` must end with `/`"),
            });
        }
        // Only a bucket that is both input and output can feed its outputs back.
        let shared_bucket = input_buckets.contains(&output_bucket);
        if shared_bucket
            && (output_prefix.starts_with(input_prefix) || input_prefix.starts_with(output_prefix))
        {
            return Err(ConfigError::Invalid {
                var: "OUTPUT_PREFIX",
                reason: format!(
                    "`{output_prefix}` overlaps INPUT_PREFIX `{input_prefix}`: outputs would trigger new work"
                ),
            });
        }
        let output_layout = env.parse("OUTPUT_LAYOUT", OutputLayout::default())?;
        let (rules, render) = rules(env, input_prefix)?;
        // Two buckets' `uploads/a.jpg` would share one output folder.
        if input_buckets.len() > 1 && output_layout == OutputLayout::Key {
            return Err(ConfigError::Invalid {
                var: "OUTPUT_LAYOUT",
                reason: "`key` (the default) would mix the outputs of several INPUT_BUCKETS: set `bucket`".into(),
            });
        }
        Ok(PipelineConfig {
            output_layout,
            input_buckets,
            output_bucket,
            output_prefix: output_prefix.to_string(),
            input_prefix: input_prefix.to_string(),
            dlq_url: env.get("DLQ_URL").map(str::to_string),
            cache_control: env
                .get("CACHE_CONTROL")
                .unwrap_or(DEFAULT_CACHE_CONTROL)
                .to_string(),
            manifest_cache_control: env
                .get("MANIFEST_CACHE_CONTROL")
                .unwrap_or(DEFAULT_MANIFEST_CACHE_CONTROL)
                .to_string(),
            max_receives: env.parse("MAX_RECEIVES", 3u32)?.max(1),
            time_reserve: std::time::Duration::from_secs(env.parse("TIME_RESERVE_SECONDS", 10)?),
            queue_url: env.get("QUEUE_URL").map(str::to_string),
            message_timeout: std::time::Duration::from_secs(
                env.parse("MESSAGE_TIMEOUT_SECONDS", 900u64)?.max(1),
            ),
            sync_deletes: env.parse("SYNC_DELETES", false)?,
            concurrency: env
                .parse("THUMBS_CONCURRENCY", default_concurrency())?
                .max(1),
            render,
            rules,
            events: EventsConfig::from_env(env)?,
        })
    }
}

/// The events' `source` when `EVENT_SOURCE` is unset.
pub const DEFAULT_EVENT_SOURCE: &str = "thumbs";

/// Where settled uploads are announced (`EVENT_BUS`, `EVENT_SOURCE`; see `crate::events`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsConfig {
    /// `None`: publishing is off.
    pub bus: Option<String>,
    pub source: String,
}

impl EventsConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let source = env.get("EVENT_SOURCE").unwrap_or(DEFAULT_EVENT_SOURCE);
        // EventBridge refuses a source starting with `aws.`, reserved for AWS services.
        if source.starts_with("aws.") || source.len() > 256 {
            return Err(ConfigError::Invalid {
                var: "EVENT_SOURCE",
                reason: format!(
                    "`{source}`: must not start with `aws.` and be at most 256 characters"
                ),
            });
        }
        Ok(EventsConfig {
            bus: env.get("EVENT_BUS").map(str::to_string),
            source: source.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_off_unless_a_bus_is_named_and_default_to_source_thumbs() {
        let off = EventsConfig::from_env(&Env::from_pairs([("EVENT_BUS", " ")])).unwrap();
        assert_eq!(off.bus, None);
        assert_eq!(off.source, "thumbs");
        let on = EventsConfig::from_env(&Env::from_pairs([
            ("EVENT_BUS", "default"),
            ("EVENT_SOURCE", "thumbs.prod"),
        ]))
        .unwrap();
        assert_eq!(on.bus.as_deref(), Some("default"));
        assert_eq!(on.source, "thumbs.prod");
        assert!(EventsConfig::from_env(&Env::from_pairs([("EVENT_SOURCE", "aws.s3")])).is_err());
    }

    #[test]
    fn defaults_apply_when_only_the_bucket_is_set() {
        let cfg = PipelineConfig::from_env(&Env::from_pairs([
            ("OUTPUT_BUCKET", "out"),
            ("INPUT_BUCKETS", "in"),
        ]))
        .unwrap();
        assert_eq!(cfg.input_buckets, ["in"]);
        assert_eq!(cfg.max_receives, 3);
        assert!(!cfg.sync_deletes);
        assert_eq!(cfg.output_prefix, "thumbnails/");
        assert_eq!(cfg.input_prefix, "uploads/");
        assert_eq!(cfg.dlq_url, None);
        assert_eq!(cfg.render, RenderSettings::default());
    }

    #[test]
    fn missing_buckets_are_named() {
        let err = PipelineConfig::from_env(&Env::from_pairs([("INPUT_BUCKETS", "in")]));
        assert_eq!(err.unwrap_err().to_string(), "OUTPUT_BUCKET must be set");
        let err = PipelineConfig::from_env(&Env::from_pairs([("OUTPUT_BUCKET", "out")]));
        assert_eq!(err.unwrap_err().to_string(), "INPUT_BUCKETS must be set");
        let env = Env::from_pairs([("OUTPUT_BUCKET", "out"), ("INPUT_BUCKETS", " , ")]);
        assert!(PipelineConfig::from_env(&env).is_err());
    }

    #[test]
    fn input_buckets_are_a_trimmed_list() {
        let env = Env::from_pairs([
            ("OUTPUT_BUCKET", "out"),
            ("INPUT_BUCKETS", "a, b ,c"),
            ("OUTPUT_LAYOUT", "bucket"),
        ]);
        let cfg = PipelineConfig::from_env(&env).unwrap();
        assert_eq!(cfg.input_buckets, ["a", "b", "c"]);
    }

    #[test]
    fn the_output_layout_is_chosen_not_derived_from_the_bucket_count() {
        let layout = |buckets: &str, layout: Option<&str>| {
            let mut pairs = vec![("OUTPUT_BUCKET", "out"), ("INPUT_BUCKETS", buckets)];
            pairs.extend(layout.map(|l| ("OUTPUT_LAYOUT", l)));
            PipelineConfig::from_env(&Env::from_pairs(pairs)).map(|c| c.output_layout)
        };
        assert_eq!(layout("a", None), Ok(OutputLayout::Key));
        assert_eq!(layout("a", Some("bucket")), Ok(OutputLayout::Bucket));
        assert_eq!(layout("a,b", Some("bucket")), Ok(OutputLayout::Bucket));
        let err = layout("a,b", None).unwrap_err().to_string();
        assert!(err.starts_with("OUTPUT_LAYOUT: `key`"), "{err}");
        assert!(layout("a", Some("flat")).is_err());
    }

    #[test]
    fn equal_prefixes_are_fine_when_outputs_go_to_another_bucket() {
        let env = Env::from_pairs([
            ("OUTPUT_BUCKET", "out"),
            ("INPUT_BUCKETS", "in"),
            ("INPUT_PREFIX", "uploads/"),
            ("OUTPUT_PREFIX", "uploads/"),
        ]);
        assert!(PipelineConfig::from_env(&env).is_ok());
    }

    #[test]
    fn overlapping_prefixes_are_refused() {
        for (input, output) in [
            ("uploads/", "uploads/thumbs/"),
            ("uploads/x/", "uploads/"),
            ("x/", "x/"),
        ] {
            let env = Env::from_pairs([
                ("OUTPUT_BUCKET", "b"),
                ("INPUT_BUCKETS", "a,b"),
                ("OUTPUT_LAYOUT", "bucket"),
                ("INPUT_PREFIX", input),
                ("OUTPUT_PREFIX", output),
            ]);
            assert!(
                PipelineConfig::from_env(&env).is_err(),
                "{input} vs {output}"
            );
        }
    }

    #[test]
    fn per_format_pixel_limits_are_read() {
        let env = Env::from_pairs([
            ("MAX_INTERLACED_PIXELS", "3"),
            ("MAX_HEIF_PIXELS", "4"),
            ("MAX_GIF_PIXELS", "5"),
            ("MAX_INPUT_WIDTH", "6"),
            ("MAX_INPUT_HEIGHT", "7"),
        ]);
        let limits = render_settings(&env).unwrap().limits;
        assert_eq!(
            (
                limits.max_pixels_interlaced,
                limits.max_pixels_heif,
                limits.max_pixels_gif,
                limits.max_width,
                limits.max_height
            ),
            (3, 4, 5, 6, 7)
        );
        let env = Env::from_pairs([("MAX_GIF_PIXELS", "0")]);
        assert!(render_settings(&env).is_err());
    }

    #[test]
    fn bad_values_name_the_variable() {
        let env = Env::from_pairs([
            ("OUTPUT_BUCKET", "b"),
            ("INPUT_BUCKETS", "a"),
            ("MAX_INPUT_PIXELS", "lots"),
        ]);
        let err = PipelineConfig::from_env(&env).unwrap_err().to_string();
        assert!(err.starts_with("MAX_INPUT_PIXELS: `lots`"), "{err}");
        let env = Env::from_pairs([("THUMBS_PRESETS", "thumb=150x150:cover,big=0")]);
        let err = render_settings(&env).unwrap_err().to_string();
        assert!(err.starts_with("THUMBS_PRESETS: preset `big=0`"), "{err}");
        let env = Env::from_pairs([("MAX_INPUT_BYTES", "0")]);
        assert!(render_settings(&env).is_err());
    }

    const RULES: &str = "avatars=uploads/avatars/ presets=s64=64x64:cover,s128=128x128:cover; \
                         products=uploads/products/ presets=w400=400x400 formats=avif,webp,jpeg";

    fn pipeline(pairs: &[(&str, &str)]) -> Result<PipelineConfig, ConfigError> {
        let mut all = vec![("OUTPUT_BUCKET", "out"), ("INPUT_BUCKETS", "in")];
        all.extend_from_slice(pairs);
        PipelineConfig::from_env(&Env::from_pairs(all))
    }

    #[test]
    fn without_rules_thumbs_presets_is_the_rule_of_every_key() {
        let cfg = pipeline(&[("THUMBS_PRESETS", "x=10")]).unwrap();
        let rule = cfg.rule_for("uploads/avatars/a.png");
        assert_eq!(rule.name, "default");
        assert_eq!(rule.settings, &cfg.render);
        assert_eq!(cfg.render.presets[0].name, "x");
    }

    #[test]
    fn each_key_follows_its_rule_and_thumbs_presets_stays_the_default() {
        let cfg = pipeline(&[("THUMBS_RULES", RULES), ("THUMBS_PRESETS", "x=10")]).unwrap();
        assert_eq!(cfg.rule_for("uploads/avatars/a.png").name, "avatars");
        assert_eq!(cfg.rule_for("uploads/products/a.png").name, "products");
        let other = cfg.rule_for("uploads/docs/a.png");
        assert_eq!(
            (other.name, other.settings.presets[0].name.as_str()),
            ("default", "x")
        );
    }

    #[test]
    fn a_default_rule_and_thumbs_presets_together_are_refused_as_ambiguous() {
        let text = format!("{RULES}; default presets=y=20");
        assert!(pipeline(&[("THUMBS_RULES", &text)]).is_ok());
        for var in ["THUMBS_PRESETS", "THUMBS_FORMATS", "THUMBS_QUALITY"] {
            let value = if var == "THUMBS_PRESETS" {
                "x=10"
            } else {
                "webp"
            };
            let value = if var == "THUMBS_QUALITY" {
                "webp=70"
            } else {
                value
            };
            let err = pipeline(&[("THUMBS_RULES", &text), (var, value)])
                .unwrap_err()
                .to_string();
            assert_eq!(
                err,
                format!("THUMBS_RULES: its rule `default` and {var} both set the default rule: keep one")
            );
        }
    }

    #[test]
    fn a_rule_outside_input_prefix_is_refused_naming_it() {
        let err = pipeline(&[("THUMBS_RULES", "old=photos/ presets=x=10")])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "THUMBS_RULES: rule `old`: prefix `photos/` is outside INPUT_PREFIX `uploads/`: its keys never reach the function"
        );
        let err = pipeline(&[("THUMBS_RULES", "a=uploads/a/ presets=big=0")])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("THUMBS_RULES: rule `a`: preset `big=0`"),
            "{err}"
        );
    }
}
