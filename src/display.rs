//! Text from outside (object keys, above all: any end user can choose one) shown to a person:
//! escaped for a terminal or a log line, and quoted for a command the person is told to paste.

use std::borrow::Cow;

/// Characters shown escaped: control characters (a newline splits a line, ESC drives the
/// terminal) and the invisible ones that reorder or hide what is shown around them (bidi
/// overrides and isolates, line and paragraph separators, zero-width ones, the BOM).
fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// `text` for people: hidden characters as Rust escapes (`\n`, `\u{1b}`) and the backslash
/// doubled so an escape in the text cannot pass for one of ours; the rest as it is.
pub fn escaped(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c == '\\' || is_hidden(c)) {
        return text.into();
    }
    text.chars()
        .map(|c| {
            if c == '\\' || is_hidden(c) {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// One shell word that bash and zsh read back as exactly `arg`: bare when it holds only
/// characters no shell treats specially; else in single quotes, inside which nothing is
/// special but the quote itself (written `'\''`); and with hidden characters, which would
/// reach the terminal as they are inside plain quotes, as `$'...'` with escapes.
pub fn shell_word(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+=@:,%".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        arg.to_string()
    } else if !arg.chars().any(is_hidden) {
        format!("'{}'", arg.replace('\'', r"'\''"))
    } else {
        let inner: String = arg
            .chars()
            .map(|c| match c {
                '\\' | '\'' => format!("\\{c}"),
                c if is_hidden(c) && c.is_ascii() => format!("\\x{:02x}", c as u32),
                c if is_hidden(c) => format!("\\u{:04x}", c as u32),
                c => c.to_string(),
            })
            .collect();
        format!("$'{inner}'")
    }
}

/// A command line: each word quoted for pasting (see [`shell_word`]).
pub fn command<'a>(words: impl IntoIterator<Item = &'a str>) -> String {
    words
        .into_iter()
        .map(shell_word)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The backfill arguments that resume after `key`: `--start-after 'KEY'`, or, for a key
/// holding hidden characters, `--start-after-hex HEX`, which any shell takes as it is.
pub fn start_after(key: &str) -> [String; 2] {
    if key.chars().any(is_hidden) {
        ["--start-after-hex".into(), to_hex(key)]
    } else {
        ["--start-after".into(), key.into()]
    }
}

/// The key as hex digits, two per UTF-8 byte.
pub fn to_hex(key: &str) -> String {
    key.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The key of `--start-after-hex`.
pub fn from_hex(hex: &str) -> Result<String, String> {
    if !hex.len().is_multiple_of(2) {
        return Err("an even number of hex digits expected".into());
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| format!("`{}` is not hex", escaped(hex)))
        })
        .collect::<Result<Vec<u8>, String>>()?;
    String::from_utf8(bytes).map_err(|_| "the key is not UTF-8".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys an end user could upload to attack the operator's shell or terminal.
    pub const HOSTILE: &[&str] = &[
        "uploads/x'$(touch pwned)'.jpg",
        "uploads/`touch pwned`.jpg",
        "uploads/$(touch pwned).jpg",
        "uploads/a\"b\\\"$(touch pwned)\".jpg",
        "uploads/x';touch pwned;'.jpg",
        "uploads/new\nline; touch pwned.jpg",
        "uploads/\u{1b}]0;title\u{7}\u{1b}[2Jesc.jpg",
        "uploads/\u{202E}gpj.exe",
        "uploads/ space and * glob ? [x] ~ & | < > ! #.jpg",
        "",
    ];

    #[test]
    fn hidden_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(
            escaped("uploads/a\nb\u{1b}[31m.jpg"),
            "uploads/a\\nb\\u{1b}[31m.jpg"
        );
        assert_eq!(escaped("uploads/café 写真.jpg"), "uploads/café 写真.jpg");
        assert_eq!(escaped("a\u{202E}b"), "a\\u{202e}b");
        // A literal backslash-n in a key does not look like an escaped newline.
        assert_eq!(escaped("a\\nb"), "a\\\\nb");
        for key in HOSTILE {
            assert!(
                !escaped(key).chars().any(is_hidden),
                "{key:?} -> {:?}",
                escaped(key)
            );
        }
    }

    /// The resume command for `key`.
    fn resume(key: &str) -> String {
        let [flag, value] = start_after(key);
        command(["thumbs", "backfill", flag.as_str(), value.as_str()])
    }

    #[test]
    fn plain_keys_stay_readable() {
        assert_eq!(
            resume("uploads/a/b-1_2.jpg"),
            "thumbs backfill --start-after uploads/a/b-1_2.jpg"
        );
        assert_eq!(
            resume("uploads/my photo.jpg"),
            "thumbs backfill --start-after 'uploads/my photo.jpg'"
        );
        assert_eq!(
            resume("uploads/it's.jpg"),
            r"thumbs backfill --start-after 'uploads/it'\''s.jpg'"
        );
        assert_eq!(
            resume("uploads/a\nb"),
            "thumbs backfill --start-after-hex 75706c6f6164732f610a62"
        );
    }

    #[test]
    fn hex_round_trips_and_bad_hex_is_refused() {
        for key in HOSTILE {
            let hex = to_hex(key);
            assert_eq!(from_hex(&hex).unwrap(), *key);
        }
        assert!(from_hex("abc").is_err());
        assert!(from_hex("zz").is_err());
        assert!(from_hex("ff").is_err());
    }

    /// What bash makes of `line` when pasted, with `thumbs` a function that writes its
    /// arguments, one per NUL-terminated entry, to a file (run in a scratch folder, which
    /// must still be empty but for that file afterwards: nothing in a key was executed).
    pub fn pasted_into_bash(line: &str) -> Vec<String> {
        let dir = std::env::temp_dir().join(format!(
            "thumbs-paste-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let script = format!("thumbs() {{ printf '%s\\0' \"$@\" > args; }}\n{line}\n");
        let status = std::process::Command::new("bash")
            .arg("-c")
            .arg(script)
            .current_dir(&dir)
            .status()
            .expect("bash runs");
        assert!(status.success(), "bash failed on {line:?}");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(files, ["args"], "the pasted line {line:?} ran something");
        let args = std::fs::read(dir.join("args")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let mut args: Vec<String> = args
            .split(|&b| b == 0)
            .map(|a| String::from_utf8(a.to_vec()).unwrap())
            .collect();
        args.pop(); // after the last NUL
        args
    }

    #[test]
    fn a_pasted_resume_command_gives_back_exactly_the_key_and_runs_nothing() {
        for key in HOSTILE {
            let line = resume(key);
            assert!(!line.chars().any(is_hidden), "{line:?}");
            let args = pasted_into_bash(&line);
            assert_eq!(args.len(), 3, "{line:?}");
            let back = match args[1].as_str() {
                "--start-after" => args[2].clone(),
                "--start-after-hex" => from_hex(&args[2]).unwrap(),
                other => panic!("{other}"),
            };
            assert_eq!(&back, key, "{line:?}");
        }
    }

    #[test]
    fn every_word_of_a_pasted_command_comes_back_as_it_was() {
        let line = command(std::iter::once("thumbs").chain(HOSTILE.iter().copied()));
        assert!(!line.chars().any(is_hidden), "{line:?}");
        assert_eq!(pasted_into_bash(&line), HOSTILE);
    }
}
