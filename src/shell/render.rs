//! `thumbs render`: local files in, the output bucket's layout on disk out.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use crate::render::{render, Manifest, ManifestSource, RenderSettings};

/// One file to render and the folder (relative to the output root) its renditions go in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub input: PathBuf,
    pub relative: PathBuf,
}

/// Expand files and folders (recursively, in sorted order) into jobs. A file given directly
/// is placed under its own name; files found in a folder keep their path below that folder.
pub fn collect_jobs(paths: &[PathBuf]) -> std::io::Result<Vec<Job>> {
    let mut jobs = Vec::new();
    for path in paths {
        if path.is_dir() {
            walk(path, path, &mut jobs)?;
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
    Ok(jobs)
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

/// Render one job into `out`; returns the number of renditions written.
pub fn run_job(job: &Job, out: &Path, settings: &RenderSettings) -> Outcome {
    let bytes = std::fs::read(&job.input).map_err(|e| format!("cannot read: {e}"))?;
    let rendered = render(&bytes, settings).map_err(|e| format!("{} ({})", e, e.kind()))?;
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
    let manifest = Manifest::new(&rendered, origin, |r| {
        dir.join(r.file_name()).display().to_string()
    });
    let path = dir.join("manifest.json");
    std::fs::write(&path, manifest.to_json())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(rendered.renditions.len())
}

/// Render every job with `jobs` threads, printing one progress line per file to stderr.
/// Returns the number of failed files.
pub fn run(jobs: &[Job], out: &Path, settings: &RenderSettings, threads: usize) -> usize {
    let next = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    let done = Mutex::new(0usize);
    let total = jobs.len();
    let work = || {
        while let Some(job) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
            let start = Instant::now();
            let outcome = run_job(job, out, settings);
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
        crate::vips::thread_shutdown();
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
        assert_eq!(
            relative,
            vec![
                PathBuf::from("b/x.jpg"),
                PathBuf::from("y.jpg"),
                PathBuf::from("y.jpg")
            ]
        );
        assert!(collect_jobs(&[root.join("missing.jpg")]).is_err());
        std::fs::remove_dir_all(root).unwrap();
    }
}
