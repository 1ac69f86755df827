#![deny(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use thumbs::config::{self, Env, PipelineConfig};
use thumbs::{shell, telemetry};

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
        Command::Render { out, jobs, paths } => {
            let settings = config::render_settings(&Env::from_process())?;
            settings.check_encoders()?;
            let jobs_list = shell::render::collect_jobs(&paths).context("reading inputs")?;
            let threads = jobs.unwrap_or_else(config::default_concurrency);
            let failed = shell::render::run(&jobs_list, &out, &settings, threads);
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
            tokio_runtime()?.block_on(async {
                let connected = shell::connect(config).await;
                shell::worker::run(connected, queue_url).await
            })?;
            Ok(())
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
    }
}

/// Read and check everything before serving anything: a bad setting fails the start, not
/// the first upload.
fn pipeline_config() -> anyhow::Result<PipelineConfig> {
    telemetry::init();
    let config = PipelineConfig::from_env(&Env::from_process())?;
    config.render.check_encoders()?;
    Ok(config)
}

fn tokio_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_stop(thumbs::vips::thread_shutdown)
        .build()?)
}
