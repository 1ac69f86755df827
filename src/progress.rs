//! Progress of a long operator command on stderr: a redrawn bar with rate and ETA on a terminal,
//! plain lines (one a second at most) in a log.

use std::io::Write;
use std::time::{Duration, Instant};

pub struct Progress {
    terminal: bool,
    started: Instant,
    last: Option<Instant>,
}

impl Progress {
    pub fn new(terminal: bool) -> Self {
        Progress {
            terminal,
            started: Instant::now(),
            last: None,
        }
    }

    /// `done` of `total` items (when known); `detail` says the rest.
    pub fn update(&mut self, done: u64, total: Option<u64>, detail: &str) {
        let now = Instant::now();
        let every = if self.terminal {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(1)
        };
        if self.last.is_some_and(|last| now - last < every) {
            return;
        }
        self.last = Some(now);
        let line = render(done, total, now - self.started, self.terminal, detail);
        let mut err = std::io::stderr().lock();
        let _ = if self.terminal {
            write!(err, "\r{line}\x1b[K")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }

    /// End the bar's line, so what follows starts on its own.
    pub fn finish(&mut self) {
        if self.terminal && self.last.is_some() {
            eprintln!();
        }
    }
}

/// One progress line: a bar (terminal) or words (log), with rate and ETA.
fn render(done: u64, total: Option<u64>, elapsed: Duration, bar: bool, detail: &str) -> String {
    let rate = done as f64 / elapsed.as_secs_f64().max(0.001);
    let eta = match total {
        Some(total) if rate > 0.0 && total >= done => {
            format!("ETA {}", clock(((total - done) as f64 / rate) as u64))
        }
        _ => "ETA ?".to_string(),
    };
    let of = total.map_or("counting".to_string(), |t| t.to_string());
    let percent = total.filter(|&t| t > 0).map(|t| done * 100 / t);
    if bar {
        const WIDTH: u64 = 24;
        let filled = percent.map_or(0, |p| (p.min(100) * WIDTH / 100) as usize);
        format!(
            "[{}{}] {:>3}% {done}/{of} {rate:.0}/s {eta} {detail}",
            "#".repeat(filled),
            "-".repeat(WIDTH as usize - filled),
            percent.map_or("?".to_string(), |p| p.to_string()),
        )
    } else {
        let percent = percent.map_or(String::new(), |p| format!(" ({p}%)"));
        format!("{done} of {of}{percent}, {rate:.0}/s, {eta}; {detail}")
    }
}

/// `42s`, `3m05s`, `2h07m`.
fn clock(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_give_rate_and_time_left() {
        let line = render(500, Some(2000), Duration::from_secs(5), false, "x");
        assert_eq!(line, "500 of 2000 (25%), 100/s, ETA 15s; x");
        let bar = render(1000, Some(2000), Duration::from_secs(10), true, "x");
        assert_eq!(
            bar,
            "[############------------]  50% 1000/2000 100/s ETA 10s x"
        );
    }

    #[test]
    fn an_unknown_total_has_no_eta() {
        let line = render(10, None, Duration::from_secs(1), false, "x");
        assert_eq!(line, "10 of counting, 10/s, ETA ?; x");
    }

    #[test]
    fn long_durations_read_as_minutes_and_hours() {
        assert_eq!(clock(185), "3m05s");
        assert_eq!(clock(7620), "2h07m");
    }
}
