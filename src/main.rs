use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use thumbs::config::{self, Env};
use thumbs::shell;

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
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("thumbs: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Render { out, jobs, paths } => {
            let settings = config::render_settings(&Env::from_process())?;
            settings.check_encoders()?;
            let jobs_list = shell::render::collect_jobs(&paths).context("reading inputs")?;
            let threads =
                jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
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
        }
    }
    Ok(())
}
