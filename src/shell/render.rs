//! `thumbs render`: local files in, the output bucket's layout on disk out.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use crate::model::{Applied, Manifest, ManifestSource, RenderSettings, Rules};
use crate::render::{self, render};

/// One file to render and the folder (relative to the output root) its renditions go in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub input: PathBuf,
    pub relative: PathBuf,
}

/// Expand files and folders (recursively, in sorted order) into jobs. A file given directly
/// is placed under its own name; files found in a folder keep their path below that folder.
/// The same file reached twice is rendered once; two different files that would share an
/// output folder (`A/same.jpg B/same.jpg`) are refused before any work starts, naming both,
/// since one would silently overwrite the other.
pub fn collect_jobs(paths: &[PathBuf]) -> std::io::Result<Vec<Job>> {
    let mut jobs = Vec::new();
    expand(paths, &mut jobs)?;
    let mut kept: Vec<(Job, PathBuf)> = Vec::new();
    for job in jobs {
        let real = std::fs::canonicalize(&job.input)?;
        match kept.iter().find(|(k, _)| k.relative == job.relative) {
            Some((_, other)) if *other == real => {} // the same file again
            Some((other, _)) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "{} and {} would both be written to {}/: render them in separate runs \
                         or pass their parent folder instead",
                        other.input.display(),
                        job.input.display(),
                        job.relative.display()
                    ),
                ))
            }
            None => kept.push((job, real)),
        }
    }
    Ok(kept.into_iter().map(|(job, _)| job).collect())
}

fn expand(paths: &[PathBuf], jobs: &mut Vec<Job>) -> std::io::Result<()> {
    for path in paths {
        if path.is_dir() {
            walk(path, path, jobs)?;
        } else {
            let name = path.file_name().ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("{}: not a file name", path.display()),
                )
            })?;
            std::fs::metadata(path)?; // a clear "No such file" before any work starts
            jobs.push(Job {
                input: path.clone(),
                relative: PathBuf::from(name),
            });
        }
    }
    Ok(())
}

fn walk(root: &Path, dir: &Path, jobs: &mut Vec<Job>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(root, &path, jobs)?;
        } else {
            let relative = path.strip_prefix(root).expect("below root").to_path_buf();
            jobs.push(Job {
                input: path,
                relative,
            });
        }
    }
    Ok(())
}

/// The outcome of one job, for the progress line and the exit code.
pub type Outcome = Result<usize, String>;

/// The rules of a run: a file follows the rule its key would have in the bucket,
/// `INPUT_PREFIX` + its path below the folder given (`uploads/avatars/me.png`).
pub struct RunRules<'a> {
    pub rules: &'a Rules,
    pub default: &'a RenderSettings,
    pub input_prefix: &'a str,
}

impl RunRules<'_> {
    pub fn for_job(&self, job: &Job) -> Applied<'_> {
        let relative = job
            .relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        self.rules
            .for_key(&format!("{}{relative}", self.input_prefix), self.default)
    }
}

/// Render one job into `out` with the settings of its `rule`; returns the number of
/// renditions written.
pub fn run_job(job: &Job, out: &Path, rule: Applied<'_>) -> Outcome {
    let bytes = std::fs::read(&job.input).map_err(|e| format!("cannot read: {e}"))?;
    let rendered = render(&bytes, rule.settings).map_err(|e| format!("{} ({})", e, e.kind()))?;
    let dir = out.join(&job.relative);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for rendition in &rendered.renditions {
        let path = dir.join(rendition.file_name());
        std::fs::write(&path, &rendition.bytes)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let origin = ManifestSource {
        path: Some(job.input.display().to_string()),
        ..Default::default()
    };
    let mut manifest = Manifest::new(&rendered, origin, |r| {
        dir.join(r.file_name()).display().to_string()
    });
    manifest.rule = Some(rule.name.to_string());
    let path = dir.join("manifest.json");
    std::fs::write(&path, manifest.to_json())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    // The renditions that were made are written; the file still counts as failed.
    if let Some(incomplete) = rendered.incomplete() {
        return Err(format!("{incomplete} ({})", incomplete.kind()));
    }
    Ok(rendered.renditions.len())
}

/// Render every job with `jobs` threads, each with its rule, printing one progress line per
/// file to stderr. Returns the number of failed files.
pub fn run(jobs: &[Job], out: &Path, rules: &RunRules<'_>, threads: usize) -> usize {
    run_each(jobs, threads, |job| run_job(job, out, rules.for_job(job)))
}

/// `run` with the per-file work given: each job once, on up to `threads` threads.
fn run_each(jobs: &[Job], threads: usize, work_on: impl Fn(&Job) -> Outcome + Sync) -> usize {
    let next = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    let done = Mutex::new(0usize);
    let total = jobs.len();
    let work = || {
        while let Some(job) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
            let start = Instant::now();
            // A panic (a bug) fails this file only: reported on its line, the rest go on.
            // Unwind-safe in fact: no lock is held and nothing shared is mid-update during
            // `work_on`, which only writes this job's own folder.
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| work_on(job)))
                .unwrap_or_else(|_| Err("internal error: the renderer panicked (internal)".into()));
            let ms = start.elapsed().as_millis();
            let mut done = done.lock().expect("progress lock");
            *done += 1;
            match outcome {
                Ok(n) => eprintln!(
                    "[{done}/{total}] ok    {} ({n} renditions, {ms} ms)",
                    job.input.display()
                ),
                Err(reason) => {
                    failed.fetch_add(1, Ordering::Relaxed);
                    eprintln!("[{done}/{total}] FAIL  {}: {reason}", job.input.display());
                }
            }
        }
        render::thread_shutdown();
    };
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, total.max(1)) {
            scope.spawn(work);
        }
    });
    failed.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_keep_relative_paths_and_files_their_names() {
        let root = std::env::temp_dir().join(format!("thumbs-walk-{}", std::process::id()));
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/x.jpg"), b"x").unwrap();
        std::fs::write(root.join("a/y.jpg"), b"y").unwrap();
        let jobs = collect_jobs(&[root.join("a"), root.join("a/y.jpg")]).unwrap();
        let relative: Vec<_> = jobs.iter().map(|j| j.relative.clone()).collect();
        // a/y.jpg is reached twice (in the folder and by name): rendered once.
        assert_eq!(
            relative,
            vec![PathBuf::from("b/x.jpg"), PathBuf::from("y.jpg")]
        );
        assert!(collect_jobs(&[root.join("missing.jpg")]).is_err());
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn different_files_that_share_an_output_folder_are_refused() {
        let root = std::env::temp_dir().join(format!("thumbs-same-{}", std::process::id()));
        std::fs::create_dir_all(root.join("A")).unwrap();
        std::fs::create_dir_all(root.join("B")).unwrap();
        std::fs::write(root.join("A/same.jpg"), b"a").unwrap();
        std::fs::write(root.join("B/same.jpg"), b"b").unwrap();
        let err = collect_jobs(&[root.join("A/same.jpg"), root.join("B/same.jpg")]).unwrap_err();
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        let text = err.to_string();
        assert!(
            text.contains("A/same.jpg") && text.contains("B/same.jpg"),
            "{text}"
        );
    }

    #[test]
    fn a_file_that_panics_gets_a_fail_line_and_the_others_still_render() {
        let jobs: Vec<Job> = ["bad.tif", "good.jpg", "also-good.png"]
            .into_iter()
            .map(|name| Job {
                input: PathBuf::from(name),
                relative: PathBuf::from(name),
            })
            .collect();
        let worked = AtomicUsize::new(0);
        let failed = run_each(&jobs, 1, |job| {
            worked.fetch_add(1, Ordering::Relaxed);
            if job.input == Path::new("bad.tif") {
                panic!("deliberate panic for {}", job.input.display());
            }
            Ok(1)
        });
        assert_eq!(failed, 1);
        assert_eq!(
            worked.into_inner(),
            3,
            "every file after the panic was worked on"
        );
    }
}
