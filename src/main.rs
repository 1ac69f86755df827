#![deny(unsafe_code)]

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use thumbs::backfill::{self, ManifestCurrent, NothingDone};
use thumbs::config::{self, Env, PipelineConfig};
use thumbs::queue::SqsQueue;
use thumbs::storage::S3Store;
use thumbs::{display, dlq, progress, shell, telemetry};

#[derive(Parser)]
#[command(name = "thumbs", version, about = "Thumbnails for S3 uploads, with libvips", after_help = config::ENV_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Render local files and folders into DIR/<path>/<preset>.<ext> plus manifest.json.
    #[command(after_help = config::ENV_HELP)]
    Render {
        /// Output folder (the same layout as the output bucket's thumbnails/).
        #[arg(long, short)]
        out: PathBuf,
        /// Images rendered at once [default: number of cores].
        #[arg(long, short)]
        jobs: Option<usize>,
        /// Rules per folder, as THUMBS_RULES (which it replaces): a file follows the rule of
        /// INPUT_PREFIX + its path below the folder given, as it would in the bucket.
        #[arg(long)]
        rules: Option<String>,
        /// Image files or folders (walked recursively).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Long-poll an SQS queue of S3 notifications and render what arrives (ECS, a VM, local).
    #[command(after_help = config::ENV_HELP)]
    Worker {
        /// The queue S3 notifies.
        #[arg(long, env = "QUEUE_URL")]
        queue_url: String,
        /// Originals processed at once [default: THUMBS_CONCURRENCY or number of cores].
        #[arg(long)]
        concurrency: Option<usize>,
    },
    /// Serve the Lambda Runtime API (what the binary does when started as `bootstrap`).
    #[command(after_help = config::ENV_HELP)]
    Lambda,
    /// Enqueue the originals already in a bucket, as S3 would announce new uploads.
    Backfill {
        /// The input bucket.
        #[arg(long)]
        bucket: String,
        /// The pipeline's queue.
        #[arg(long, env = "QUEUE_URL")]
        queue_url: String,
        /// Only keys under this prefix.
        #[arg(long, env = "INPUT_PREFIX", default_value = config::DEFAULT_INPUT_PREFIX)]
        prefix: String,
        /// Start after this key (printed by an interrupted run).
        #[arg(long)]
        start_after: Option<String>,
        /// Start after this key, given as hex digits of its UTF-8 bytes (printed for keys
        /// holding control characters).
        #[arg(long, conflicts_with = "start_after", value_parser = display::from_hex)]
        start_after_hex: Option<String>,
        /// Skip originals whose manifest records their current ETag and the current presets and
        /// formats of their rule (reads OUTPUT_BUCKET, OUTPUT_PREFIX, THUMBS_PRESETS,
        /// THUMBS_RULES... as the function does).
        #[arg(long)]
        only_missing: bool,
        /// List and count, send nothing.
        #[arg(long)]
        dry_run: bool,
        /// Keys per LIST call.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i32).range(1..=1000))]
        page_size: i32,
        /// Batch sends (10 messages each) in flight at once.
        #[arg(long, default_value_t = 8)]
        in_flight: usize,
    },
    /// The dead-letter queue: a summary by ErrorKind (nothing consumed), or `redrive`.
    Dlq {
        /// The dead-letter queue.
        #[arg(long, env = "DLQ_URL", global = true)]
        dlq_url: Option<String>,
        #[command(subcommand)]
        action: Option<DlqAction>,
    },
}

#[derive(Subcommand)]
enum DlqAction {
    /// Move messages back to the main queue (all, or one kind); each is deleted from the DLQ
    /// only after the main queue accepted it.
    Redrive {
        /// Only messages with this ErrorKind.
        #[arg(long)]
        kind: Option<String>,
        /// Count what would move; move nothing.
        #[arg(long)]
        dry_run: bool,
        /// The main queue.
        #[arg(long, env = "QUEUE_URL")]
        queue_url: String,
    },
}

fn main() -> ExitCode {
    // Lambda's provided.al2023 runtime starts the function as `bootstrap` with no arguments.
    let as_bootstrap = std::env::args_os()
        .next()
        .map(PathBuf::from)
        .is_some_and(|p| p.file_name().is_some_and(|n| n == "bootstrap"));
    let command = if as_bootstrap {
        Command::Lambda
    } else {
        Cli::parse().command
    };
    match run(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("thumbs: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Render {
            out,
            jobs,
            rules,
            paths,
        } => {
            let mut env = Env::from_process();
            if let Some(rules) = rules {
                env = env.with("THUMBS_RULES", &rules);
            }
            let input_prefix = config::input_prefix(&env)?;
            let (rules, default) = config::rules(&env, &input_prefix)?;
            rules.check_encoders(&default)?;
            let jobs_list = shell::render::collect_jobs(&paths).context("reading inputs")?;
            let threads = jobs.unwrap_or_else(config::default_concurrency);
            let run_rules = shell::render::RunRules {
                rules: &rules,
                default: &default,
                input_prefix: &input_prefix,
            };
            let failed = shell::render::run(&jobs_list, &out, &run_rules, threads);
            eprintln!(
                "{} of {} files rendered into {}",
                jobs_list.len() - failed,
                jobs_list.len(),
                out.display()
            );
            if failed > 0 {
                anyhow::bail!("{failed} file(s) failed");
            }
            Ok(())
        }
        Command::Worker {
            queue_url,
            concurrency,
        } => {
            let mut config = pipeline_config()?;
            if let Some(n) = concurrency {
                config.concurrency = n.max(1);
            }
            // What must come back is sent to this queue again as a copy (attempts counted).
            config.queue_url = Some(queue_url.clone());
            let runtime = tokio_runtime()?;
            let result = runtime.block_on(async {
                let connected = shell::connect(config).await;
                shell::worker::run(connected, queue_url).await
            });
            // A hung render's thread cannot be stopped: do not wait for it on the way out.
            runtime.shutdown_timeout(std::time::Duration::from_secs(5));
            Ok(result?)
        }
        Command::Lambda => {
            let config = pipeline_config()?;
            tokio_runtime()?
                .block_on(async {
                    let connected = shell::connect(config).await;
                    shell::lambda::run(connected).await
                })
                .map_err(|e| anyhow::anyhow!(e))
        }
        Command::Backfill {
            bucket,
            queue_url,
            prefix,
            start_after,
            start_after_hex,
            only_missing,
            dry_run,
            page_size,
            in_flight,
        } => {
            telemetry::init();
            // The same command, for the operator to rerun from a resume point.
            let mut rerun: Vec<String> = [
                "thumbs",
                "backfill",
                "--bucket",
                &bucket,
                "--queue-url",
                &queue_url,
                "--prefix",
                &prefix,
                "--page-size",
                &page_size.to_string(),
                "--in-flight",
                &in_flight.to_string(),
            ]
            .map(String::from)
            .into();
            rerun.extend(only_missing.then(|| "--only-missing".to_string()));
            rerun.extend(dry_run.then(|| "--dry-run".to_string()));
            let check = only_missing
                .then(|| PipelineConfig::from_env(&Env::from_process()))
                .transpose()
                .context("--only-missing reads the pipeline's settings")?;
            let options = backfill::Options {
                bucket,
                prefix,
                queue_url,
                start_after: start_after.or(start_after_hex),
                dry_run,
                page_size,
                in_flight,
                region: std::env::var("AWS_REGION").ok(),
            };
            operator_runtime()?.block_on(run_backfill(options, check, &rerun))
        }
        Command::Dlq { dlq_url, action } => {
            telemetry::init();
            let dlq_url =
                dlq_url.context("the dead-letter queue: pass --dlq-url or set DLQ_URL")?;
            operator_runtime()?.block_on(run_dlq(dlq_url, action))
        }
    }
}

/// `rerun` with the arguments that start after `key` (from the start without one), quoted so
/// that pasting it runs exactly this command, whatever the key holds.
fn resume_command(rerun: &[String], key: Option<&str>) -> String {
    let from = key.map(display::start_after);
    display::command(
        rerun
            .iter()
            .chain(from.iter().flatten())
            .map(String::as_str),
    )
}

/// `check`: the pipeline's settings when `--only-missing` is asked for; `rerun`: the command
/// (see `resume_command`).
async fn run_backfill(
    options: backfill::Options,
    check: Option<PipelineConfig>,
    rerun: &[String],
) -> anyhow::Result<()> {
    let sdk = aws_config::load_from_env().await;
    let store = S3Store::new(&sdk);
    let queue = Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(&sdk)));
    // Ctrl-C / SIGTERM: finish the page in hand, then say where to resume.
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    tokio::spawn(async move {
        shell::stop_requested().await;
        eprintln!("stopping after the page in hand...");
        flag.store(true, Ordering::Relaxed);
    });
    let mut bar = progress::Progress::new(std::io::stderr().is_terminal());
    let summary = match check {
        Some(config) => {
            let done = Arc::new(ManifestCurrent::new(store.clone(), config));
            backfill::run(&store, queue, done, &options, &stop, &mut bar).await
        }
        None => {
            backfill::run(
                &store,
                queue,
                Arc::new(NothingDone),
                &options,
                &stop,
                &mut bar,
            )
            .await
        }
    }
    .inspect_err(|e| {
        eprintln!(
            "resume with: {}",
            resume_command(rerun, e.resume_after.as_deref())
        )
    })?;
    let c = summary.counts;
    let verb = if options.dry_run {
        "would enqueue"
    } else {
        "enqueued"
    };
    println!(
        "listed {}, skipped {}, {verb} {}, failed to enqueue {}",
        c.listed, c.skipped, c.enqueued, c.failed
    );
    for (key, reason) in &summary.failed_keys {
        eprintln!(
            "not enqueued: {}: {}",
            display::escaped(key),
            display::escaped(reason)
        );
    }
    if summary.interrupted || c.failed > 0 {
        eprintln!(
            "resume with: {}",
            resume_command(rerun, summary.resume_after.as_deref())
        );
    }
    if summary.interrupted {
        anyhow::bail!("interrupted");
    }
    if c.failed > 0 {
        anyhow::bail!(
            "{} object(s) could not be enqueued; the command above retries them",
            c.failed
        );
    }
    Ok(())
}

async fn run_dlq(dlq_url: String, action: Option<DlqAction>) -> anyhow::Result<()> {
    let sdk = aws_config::load_from_env().await;
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&sdk));
    match action {
        None => {
            let summary = dlq::summarize(&queue, &dlq_url).await?;
            print!("{}", summary.render());
        }
        Some(DlqAction::Redrive {
            kind,
            dry_run,
            queue_url,
        }) => {
            let counts =
                dlq::redrive(&queue, &dlq_url, &queue_url, kind.as_deref(), dry_run).await?;
            let verb = if dry_run { "would move" } else { "moved" };
            println!(
                "{verb} {} message(s) to the main queue; left in the DLQ: {} of other kinds, {} that could not be sent; sent but not deleted (now in both queues): {}",
                counts.moved.total(),
                counts.left,
                counts.send_failed,
                counts.delete_failed
            );
            print!("{}", counts.moved.render_kinds());
            if counts.send_failed > 0 {
                anyhow::bail!("{} message(s) could not be moved", counts.send_failed);
            }
        }
    }
    Ok(())
}

/// Read and check everything before serving anything: a bad setting fails the start, not
/// the first upload.
fn pipeline_config() -> anyhow::Result<PipelineConfig> {
    telemetry::init();
    let config = PipelineConfig::from_env(&Env::from_process())?;
    config.rules.check_encoders(&config.render)?;
    Ok(config)
}

fn tokio_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_stop(thumbs::render::thread_shutdown)
        .build()?)
}

/// For the commands that never touch libvips: without `tokio_runtime`'s per-thread libvips
/// cleanup, which crashes on exit when libvips was never started.
fn operator_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
