//! Rules per folder (`THUMBS_RULES`): each kind of upload (a key prefix) gets its own
//! presets, formats and quality; the first rule whose prefix starts the key wins, and keys no
//! rule names get the default rule (`THUMBS_PRESETS`, `THUMBS_FORMATS`, `THUMBS_QUALITY`).
//!
//! Prefixes, not globs: S3 routes notifications and lists keys by prefix, so a rule's prefix
//! is exactly what a notification filter, a `backfill --prefix` and an IAM condition can name;
//! and with prefixes "this rule can never match" is decidable (an earlier prefix starts it),
//! so a shadowed rule is refused at start instead of silently never applying.
//!
//! The text: rules separated by `;` or new lines, each `NAME=PREFIX` followed by
//! blank-separated `presets=...`, `formats=...`, `quality=...` in the `THUMBS_*` syntax, e.g.
//! `avatars=uploads/avatars/ presets=s64=64x64:cover,s128=128x128:cover formats=webp`.
//! `presets` is required; `formats` and `quality` default to the default rule's. A last rule
//! written `default presets=...` (no prefix) replaces `THUMBS_PRESETS`/`_FORMATS`/`_QUALITY`.

use super::{
    parse_formats, parse_presets, parse_quality, Format, PresetError, RenderSettings, MAX_SIDE,
};

/// The name of the rule for keys no other rule names.
pub const DEFAULT_RULE: &str = "default";

/// One kind of upload: keys starting with `prefix` get `settings`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub prefix: String,
    pub settings: RenderSettings,
}

/// The rule a key follows: its name (for the manifest) and its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied<'a> {
    pub name: &'a str,
    pub settings: &'a RenderSettings,
}

/// The prefixed rules, in order. The default rule's settings are kept beside them (they are
/// also the function's limits and strategy: `PipelineConfig::render`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rules(pub Vec<Rule>);

impl Rules {
    /// The first rule whose prefix starts `key`, else the default rule (`default`).
    pub fn for_key<'a>(&'a self, key: &str, default: &'a RenderSettings) -> Applied<'a> {
        match self.0.iter().find(|r| key.starts_with(&r.prefix)) {
            Some(rule) => Applied {
                name: &rule.name,
                settings: &rule.settings,
            },
            None => Applied {
                name: DEFAULT_RULE,
                settings: default,
            },
        }
    }

    /// Every rule, the default last: what must hold for all of them (encoders, memory).
    pub fn all<'a>(&'a self, default: &'a RenderSettings) -> impl Iterator<Item = Applied<'a>> {
        self.0
            .iter()
            .map(|r| Applied {
                name: &r.name,
                settings: &r.settings,
            })
            .chain([Applied {
                name: DEFAULT_RULE,
                settings: default,
            }])
    }
}

/// The largest rendition, in pixels, each format was measured to encode within the 512 MB an
/// image may use (the template's memory floor is 2 x 512 + 256 MB): AVIF 2048x2048 peaked at
/// 229 MB, while a width-only 800 px AVIF of a tall upload (800x8192) took 826 MB and 1600 px
/// (1600x16383) 3.0 GB: libaom's memory grows with the frame far faster than the other
/// encoders'. WebP and JPEG 1600x16383 peaked at 324 and 277 MB, 4000x16000 at 715 and
/// 600 MB (docs/benchmarks/memory.md, "Rules per folder").
const fn max_output_pixels(format: Format) -> u64 {
    match format {
        Format::Avif => 2048 * 2048,
        Format::Webp | Format::Jpeg => 1600 * MAX_SIDE as u64,
    }
}

/// Refuse a rule whose renditions could need more memory than an image may use: a
/// rendition's worst case is its box, or for a width-only preset its width by `MAX_SIDE` (a
/// tall upload), never more than the largest input accepted.
fn check_memory(rule: &str, settings: &RenderSettings) -> Result<(), RuleError> {
    for preset in &settings.presets {
        let (width, height) = preset.bounds();
        let worst = (u64::from(width) * u64::from(height)).min(settings.limits.max_pixels);
        for &format in &settings.formats {
            let most = max_output_pixels(format);
            if worst > most {
                return Err(RuleError::Memory {
                    rule: rule.into(),
                    preset: preset.name.clone(),
                    format,
                    size: format!("{width}x{height}"),
                    megapixels: format!("{:.1}", worst as f64 / 1e6),
                    most: format!("{:.1}", most as f64 / 1e6),
                });
            }
        }
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error(
        "rule `{rule}`: preset `{preset}` in {format} can be {size} ({megapixels} MP, for a tall upload when it has no height), over the {most} MP that {format} can encode within the 512 MB an image may use: give it a smaller box (e.g. NAME=800x800) or leave {format} out"
    )]
    Memory {
        rule: String,
        preset: String,
        format: Format,
        size: String,
        megapixels: String,
        most: String,
    },
    #[error(
        "rule {index} `{text}`: expected NAME=PREFIX then presets=..., formats=..., quality=..."
    )]
    Syntax { index: usize, text: String },
    #[error("rule `{0}`: name must be 1-32 characters of a-z, 0-9, `-` or `_`")]
    Name(String),
    #[error("rule name `{0}` is used twice")]
    Duplicate(String),
    #[error("rule `{0}`: no presets (every rule needs presets=...)")]
    Empty(String),
    #[error("rule `{rule}`: unknown setting `{field}` (use presets, formats or quality)")]
    Field { rule: String, field: String },
    #[error("rule `{rule}`: `{field}` is given twice")]
    Repeated { rule: String, field: String },
    #[error("rule `{rule}`: {error}")]
    Setting { rule: String, error: PresetError },
    #[error(
        "rule `{rule}` (prefix `{prefix}`) can never match: rule `{earlier}` comes first and its prefix `{earlier_prefix}` covers it (put the longer prefix first)"
    )]
    Shadowed {
        rule: String,
        prefix: String,
        earlier: String,
        earlier_prefix: String,
    },
    #[error("rule `{DEFAULT_RULE}` (no prefix) must be the last rule")]
    DefaultNotLast,
    #[error("rule `{DEFAULT_RULE}` is the rule for keys no other rule names: it takes no prefix")]
    DefaultWithPrefix,
    #[error("a rule without a prefix must be named `{DEFAULT_RULE}`, not `{0}`")]
    NoPrefix(String),
}

/// What `THUMBS_RULES` says, before the default rule is settled (see [`Parsed::into_rules`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    rules: Vec<Written>,
    /// The `default` rule, when the text has one.
    pub default: Option<Written>,
}

/// One rule as written: the settings not given are `None` (inherited from the default rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    name: String,
    prefix: String,
    presets: String,
    formats: Option<String>,
    quality: Option<String>,
}

/// Parse the rules' text: syntax, names, fields, shadowing. The prefixes' relation to
/// `INPUT_PREFIX` is the configuration's business.
pub fn parse_rules(text: &str) -> Result<Parsed, RuleError> {
    let mut rules: Vec<Written> = Vec::new();
    let mut default = None;
    let parts = text
        .split([';', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty());
    for (index, part) in parts.enumerate() {
        if default.is_some() {
            return Err(RuleError::DefaultNotLast);
        }
        let rule = parse_rule(index + 1, part)?;
        if rules.iter().any(|r| r.name == rule.name) {
            return Err(RuleError::Duplicate(rule.name));
        }
        if rule.prefix.is_empty() {
            default = Some(rule);
            continue;
        }
        if let Some(earlier) = rules.iter().find(|r| rule.prefix.starts_with(&r.prefix)) {
            return Err(RuleError::Shadowed {
                rule: rule.name,
                prefix: rule.prefix,
                earlier: earlier.name.clone(),
                earlier_prefix: earlier.prefix.clone(),
            });
        }
        rules.push(rule);
    }
    Ok(Parsed { rules, default })
}

fn parse_rule(index: usize, text: &str) -> Result<Written, RuleError> {
    let mut fields = text.split_whitespace();
    let head = fields.next().unwrap_or_default();
    let (name, prefix) = head.split_once('=').unwrap_or((head, ""));
    let name_ok = (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    // `presets=...` first: the NAME=PREFIX was left out.
    if !name_ok || ["presets", "formats", "quality"].contains(&name) {
        return Err(if name_ok || !head.contains('=') || name.is_empty() {
            RuleError::Syntax {
                index,
                text: text.into(),
            }
        } else {
            RuleError::Name(name.into())
        });
    }
    match (name == DEFAULT_RULE, prefix.is_empty()) {
        (true, false) => return Err(RuleError::DefaultWithPrefix),
        (false, true) => return Err(RuleError::NoPrefix(name.into())),
        _ => {}
    }
    let mut written = Written {
        name: name.into(),
        prefix: prefix.into(),
        presets: String::new(),
        formats: None,
        quality: None,
    };
    let mut presets = None;
    for field in fields {
        let (key, value) = field.split_once('=').unwrap_or((field, ""));
        let slot = match key {
            "presets" => &mut presets,
            "formats" => &mut written.formats,
            "quality" => &mut written.quality,
            _ => {
                return Err(RuleError::Field {
                    rule: name.into(),
                    field: key.into(),
                })
            }
        };
        if slot.replace(value.to_string()).is_some() {
            return Err(RuleError::Repeated {
                rule: name.into(),
                field: key.into(),
            });
        }
    }
    written.presets = presets
        .filter(|p| !p.is_empty())
        .ok_or_else(|| RuleError::Empty(name.into()))?;
    Ok(written)
}

impl Written {
    /// This rule's settings: its own presets, its formats and quality or else `base`'s, and
    /// `base`'s limits and strategy (those are per function, not per rule).
    fn settings(&self, base: &RenderSettings) -> Result<RenderSettings, RuleError> {
        let setting = |error| RuleError::Setting {
            rule: self.name.clone(),
            error,
        };
        Ok(RenderSettings {
            presets: parse_presets(&self.presets).map_err(setting)?,
            formats: match &self.formats {
                Some(f) => parse_formats(f).map_err(setting)?,
                None => base.formats.clone(),
            },
            quality: match &self.quality {
                Some(q) => parse_quality(q).map_err(setting)?,
                None => base.quality,
            },
            ..base.clone()
        })
    }
}

impl Parsed {
    /// The validated rules and the default rule's settings; `base` is the default rule when
    /// the text has none (from `THUMBS_*`), and gives every rule the limits and strategy.
    pub fn into_rules(self, base: RenderSettings) -> Result<(Rules, RenderSettings), RuleError> {
        // THUMBS_PRESETS/_FORMATS alone keep what they always did; every written rule fits
        // the memory an image may use.
        let default = match &self.default {
            Some(written) => {
                let settings = written.settings(&base)?;
                check_memory(DEFAULT_RULE, &settings)?;
                settings
            }
            None => base,
        };
        let rules = self
            .rules
            .iter()
            .map(|w| {
                let settings = w.settings(&default)?;
                check_memory(&w.name, &settings)?;
                Ok(Rule {
                    name: w.name.clone(),
                    prefix: w.prefix.clone(),
                    settings,
                })
            })
            .collect::<Result<_, RuleError>>()?;
        Ok((Rules(rules), default))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Format;

    const EXAMPLE: &str = "\
        avatars=uploads/avatars/ presets=s64=64x64:cover,s128=128x128:cover;
        products=uploads/products/ presets=w400=400x400,w800=800x800,w1600=1600x1600 formats=avif,webp,jpeg quality=avif=45";

    fn rules(text: &str) -> Result<(Rules, RenderSettings), RuleError> {
        parse_rules(text)?.into_rules(RenderSettings::default())
    }

    fn names(settings: &RenderSettings) -> Vec<&str> {
        settings.presets.iter().map(|p| p.name.as_str()).collect()
    }

    #[test]
    fn the_first_rule_whose_prefix_starts_the_key_wins_and_the_rest_get_the_default() {
        let (rules, default) = rules(EXAMPLE).unwrap();
        let avatar = rules.for_key("uploads/avatars/me.png", &default);
        assert_eq!(avatar.name, "avatars");
        assert_eq!(names(avatar.settings), ["s64", "s128"]);
        assert_eq!(avatar.settings.formats, [Format::Webp]);
        let product = rules.for_key("uploads/products/shoe.jpg", &default);
        assert_eq!(product.name, "products");
        assert_eq!(
            product.settings.formats,
            [Format::Avif, Format::Webp, Format::Jpeg]
        );
        assert_eq!(product.settings.quality.avif, 45);
        assert_eq!(product.settings.quality.jpeg, 82);
        let other = rules.for_key("uploads/avatars.png", &default);
        assert_eq!(other.name, DEFAULT_RULE);
        assert_eq!(other.settings, &RenderSettings::default());
    }

    #[test]
    fn missing_formats_and_quality_come_from_the_default_rule() {
        let text = "a=uploads/a/ presets=x=10; default presets=y=20 formats=jpeg quality=jpeg=60";
        let (rules, default) = rules(text).unwrap();
        let a = rules.for_key("uploads/a/1.jpg", &default).settings;
        assert_eq!(a.formats, [Format::Jpeg]);
        assert_eq!(a.quality.jpeg, 60);
        assert_eq!(names(&default), ["y"]);
    }

    #[test]
    fn limits_and_strategy_are_the_functions_for_every_rule() {
        let mut base = RenderSettings::default();
        base.limits.max_bytes = 7;
        let (rules, default) = parse_rules(EXAMPLE).unwrap().into_rules(base).unwrap();
        assert!(rules
            .all(&default)
            .all(|r| r.settings.limits.max_bytes == 7));
        assert_eq!(rules.all(&default).count(), 3);
    }

    #[test]
    fn no_text_means_only_the_default_rule() {
        let (rules, default) = rules(" ; \n ").unwrap();
        assert_eq!(rules, Rules::default());
        assert_eq!(default, RenderSettings::default());
    }

    #[test]
    fn bad_rules_are_refused_naming_the_rule_and_the_reason() {
        let cases = [
            ("a=uploads/a/", "rule `a`: no presets (every rule needs presets=...)"),
            ("a=uploads/a/ presets=", "rule `a`: no presets (every rule needs presets=...)"),
            (
                "a=uploads/a/ presets=big=0",
                "rule `a`: preset `big=0`: sizes must be whole numbers from 1 to 16383",
            ),
            (
                "a=uploads/a/ presets=x=10 formats=gif",
                "rule `a`: unknown output format `gif` (use webp, jpeg or avif)",
            ),
            (
                "a=uploads/a/ presets=x=10 quality=webp=101",
                "rule `a`: quality `webp=101`: expected FORMAT=1..100, e.g. webp=80",
            ),
            (
                "a=uploads/a/ presets=x=10 size=3",
                "rule `a`: unknown setting `size` (use presets, formats or quality)",
            ),
            (
                "a=uploads/a/ presets=x=10 presets=y=3",
                "rule `a`: `presets` is given twice",
            ),
            (
                "a=uploads/ presets=x=10; b=uploads/b/ presets=y=20",
                "rule `b` (prefix `uploads/b/`) can never match: rule `a` comes first and its prefix `uploads/` covers it (put the longer prefix first)",
            ),
            (
                "a=uploads/a/ presets=x=10; b=uploads/a/ presets=y=20",
                "rule `b` (prefix `uploads/a/`) can never match: rule `a` comes first and its prefix `uploads/a/` covers it (put the longer prefix first)",
            ),
            (
                "a=uploads/a/ presets=x=10; a=uploads/b/ presets=y=20",
                "rule name `a` is used twice",
            ),
            ("Big=uploads/a/ presets=x=10", "rule `Big`: name must be 1-32 characters of a-z, 0-9, `-` or `_`"),
            (
                "presets=x=10",
                "rule 1 `presets=x=10`: expected NAME=PREFIX then presets=..., formats=..., quality=...",
            ),
            ("avatars presets=x=10", "a rule without a prefix must be named `default`, not `avatars`"),
            (
                "default=uploads/ presets=x=10",
                "rule `default` is the rule for keys no other rule names: it takes no prefix",
            ),
            (
                "default presets=x=10; a=uploads/a/ presets=y=1",
                "rule `default` (no prefix) must be the last rule",
            ),
        ];
        for (text, expected) in cases {
            let got = rules(text).map(|_| ()).unwrap_err().to_string();
            assert_eq!(got, expected, "{text}");
        }
    }

    #[test]
    fn rules_whose_renditions_could_pass_the_memory_of_an_image_are_refused() {
        let err = rules("p=uploads/p/ presets=w400=400 formats=avif,webp")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "rule `p`: preset `w400` in avif can be 400x16383 (6.6 MP, for a tall upload when it has no height), over the 4.2 MP that avif can encode within the 512 MB an image may use: give it a smaller box (e.g. NAME=800x800) or leave avif out"
        );
        assert!(rules("p=uploads/p/ presets=w1600=1600x1600,b=2048x2048 formats=avif").is_ok());
        assert!(rules("p=uploads/p/ presets=w1600=1600 formats=webp,jpeg").is_ok());
        let err = rules("p=uploads/p/ presets=full=4096 formats=webp").unwrap_err();
        assert!(matches!(err, RuleError::Memory { ref size, .. } if size == "4096x16383"));
        // A `default` rule is checked like the others; THUMBS_* alone is not (no change for
        // stacks without rules).
        assert!(rules("default presets=w400=400 formats=avif").is_err());
        let avif = RenderSettings {
            formats: vec![Format::Avif],
            ..RenderSettings::default()
        };
        assert!(parse_rules("").unwrap().into_rules(avif).is_ok());
    }

    #[test]
    fn a_longer_prefix_before_a_shorter_one_is_fine() {
        let (rules, default) =
            rules("big=uploads/a/big/ presets=x=10; a=uploads/a/ presets=y=5").unwrap();
        assert_eq!(rules.for_key("uploads/a/big/1.jpg", &default).name, "big");
        assert_eq!(rules.for_key("uploads/a/1.jpg", &default).name, "a");
    }
}
