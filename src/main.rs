//! The command line: parses arguments and hands over to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "Turns raw text shards into training data for large language models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs a pipeline spec; resumes an interrupted run in the same output folder.
    Run {
        /// The pipeline spec (TOML).
        spec: PathBuf,
        /// Worker threads (default: all cores).
        #[arg(long)]
        workers: Option<usize>,
        /// Redo every task, discarding what an earlier run left in the output folder.
        #[arg(long)]
        force: bool,
        /// No progress output.
        #[arg(long, short)]
        quiet: bool,
        /// Sets a step's parameter for this run: STEP is the step's number
        /// or its op's name, VALUE a TOML value (`--set 3.threshold=0.7`,
        /// `--set tokenize.shuffle=false`). Repeatable; a rerun must give
        /// the same.
        #[arg(long = "set", value_name = "STEP.KEY=VALUE")]
        set: Vec<String>,
        /// Write tokenized shards in input order: an alias of
        /// `--set tokenize.shuffle=false`.
        #[arg(long)]
        no_shuffle: bool,
        /// `local` (this machine) or `slurm` (each phase an sbatch job array).
        #[arg(long, default_value = "local")]
        executor: String,
        #[command(flatten)]
        slurm: SlurmArgs,
    },
    /// Runs tasks of one phase of a started run (what a Slurm array element
    /// runs), or with --finish writes the run's stats once every phase is done.
    Task {
        spec: PathBuf,
        /// The phase (`s0`, `2-dedup_minhash-buckets`, ... as `sluice status` lists them).
        #[arg(long, required_unless_present = "finish")]
        phase: Option<String>,
        /// Task numbers, comma-separated (default: every unfinished task).
        #[arg(long, value_delimiter = ',')]
        tasks: Vec<usize>,
        /// Merge the task stats into stats.json and clean up.
        #[arg(long, conflicts_with = "phase")]
        finish: bool,
        #[arg(long)]
        workers: Option<usize>,
        #[arg(long, short)]
        quiet: bool,
        /// As the run was started with them.
        #[arg(long = "set", value_name = "STEP.KEY=VALUE")]
        set: Vec<String>,
        /// As the run was started with it.
        #[arg(long)]
        no_shuffle: bool,
    },
    /// Where a run stands: per phase, tasks done, running, pending, failed
    /// (with the tail of a failed task's log) and blocked by a failed phase.
    Status {
        /// The run's output folder.
        out: PathBuf,
    },
    /// One HTML page of a finished run: the funnel with its drop reasons,
    /// distributions with thresholds, samples of what each reason dropped,
    /// per-source tables, time per phase. Reads stats.json (and the ops'
    /// small reports), not the shards.
    Report {
        /// The run's output folder.
        #[arg(required_unless_present = "compare")]
        out: Option<PathBuf>,
        /// Two runs' output folders, side by side.
        #[arg(long, num_args = 2, value_names = ["A", "B"], conflicts_with = "out")]
        compare: Option<Vec<PathBuf>>,
        /// The HTML file (default: report.html in the run's folder; with
        /// --compare, compare.html in A's).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Describes a folder of Parquet shards (or one file).
    Inspect {
        path: PathBuf,
        /// The text column whose lengths are summarised.
        #[arg(long, default_value = "text")]
        text_column: String,
        /// For Megatron .bin/.idx shards: a tokenizer.json to decode `--doc` with.
        #[arg(long)]
        tokenizer: Option<PathBuf>,
        /// For Megatron .bin/.idx shards: show this document's ids (0-based).
        #[arg(long)]
        doc: Option<usize>,
    },
    /// Trains a byte-level BPE tokenizer from shards; writes tokenizer.json and report.json.
    TrainTokenizer {
        /// The tokenizer spec (TOML): [input], [tokenizer], [output], [report].
        spec: PathBuf,
        /// Worker threads (default: all cores).
        #[arg(long)]
        workers: Option<usize>,
        /// No progress lines, no summary.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Prunes a tokenizer to what a corpus uses: writes the smaller
    /// tokenizer.json, id_map.json (old id → new id) and report.json.
    PruneTokenizer {
        /// The prune spec (TOML): [input], [prune], [output].
        spec: PathBuf,
        /// Worker threads (default: all cores).
        #[arg(long)]
        workers: Option<usize>,
        /// No summary line.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Trains an n-gram language model (modified Kneser-Ney, as KenLM's
    /// lmplz) from shards; writes model.arpa, model.binary and report.json.
    TrainLm {
        /// The language-model spec (TOML): [input], [lm], [output].
        spec: PathBuf,
        /// Worker threads (default: all cores).
        #[arg(long)]
        workers: Option<usize>,
        /// No progress lines, no summary.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Trains a fastText quality classifier from positive and negative
    /// shards; writes model.bin and report.json (held-out precision, recall,
    /// F1, ROC AUC, score distribution).
    TrainClassifier {
        /// The classifier spec (TOML): [train], [model], [text], [output].
        spec: PathBuf,
        /// No summary.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Counts how much of the named evaluation sets a corpus holds (the
    /// n-gram overlap test of `decontaminate`); writes
    /// decontamination_report.json, never a corpus.
    Contamination {
        /// The spec (TOML): [input], [contamination], [output].
        spec: PathBuf,
        /// Worker threads (default: all cores).
        #[arg(long)]
        workers: Option<usize>,
        /// No summary.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Lists the operators with their parameters, defaults and drop reasons.
    Ops {
        /// The operator reference as markdown (what docs/ops.md holds).
        #[arg(long)]
        markdown: bool,
    },
}

/// sbatch settings for `--executor slurm`; each overrides the spec's
/// `[slurm]` key of the same name.
#[derive(clap::Args, Default)]
struct SlurmArgs {
    #[arg(long)]
    partition: Option<String>,
    #[arg(long)]
    account: Option<String>,
    /// Time limit per array element (`04:00:00`).
    #[arg(long)]
    time: Option<String>,
    /// CPUs per array element (its worker threads).
    #[arg(long)]
    cpus_per_task: Option<usize>,
    /// Memory per array element (`16G`).
    #[arg(long)]
    mem: Option<String>,
    /// Tasks each array element runs (default 1).
    #[arg(long)]
    tasks_per_job: Option<usize>,
    /// Array elements per sbatch job at most (default: the cluster's MaxArraySize).
    #[arg(long)]
    max_array: Option<usize>,
    /// Array elements running at once (sbatch's %N throttle).
    #[arg(long)]
    max_running: Option<usize>,
    /// Job name prefix (default `sluice`).
    #[arg(long)]
    job_name: Option<String>,
    /// One more sbatch option, as `--sbatch-arg=--qos=high` (repeatable).
    #[arg(long = "sbatch-arg", allow_hyphen_values = true)]
    sbatch_args: Vec<String>,
    /// Print the sbatch scripts; submit nothing.
    #[arg(long)]
    dry_run: bool,
    /// Wait until the jobs end and print the run's stats (or what failed).
    #[arg(long)]
    wait: bool,
}

impl SlurmArgs {
    fn over(self, spec: &sluice::pipeline::spec::SlurmSpec) -> sluice::exec::slurm::SlurmOptions {
        let mut s = spec.clone();
        s.partition = self.partition.or(s.partition);
        s.account = self.account.or(s.account);
        s.time = self.time.or(s.time);
        s.cpus_per_task = self.cpus_per_task.or(s.cpus_per_task);
        s.mem = self.mem.or(s.mem);
        s.tasks_per_job = self.tasks_per_job.or(s.tasks_per_job);
        s.max_array = self.max_array.or(s.max_array);
        s.max_running = self.max_running.or(s.max_running);
        s.job_name = self.job_name.or(s.job_name);
        s.sbatch_args.extend(self.sbatch_args);
        sluice::exec::slurm::SlurmOptions {
            settings: s,
            dry_run: self.dry_run,
            wait: self.wait,
        }
    }
}

/// `--workers`, or every core. More threads than this many per core only
/// cost memory (each holds batches in flight): capped, with a note.
const MAX_WORKERS_PER_CORE: usize = 8;

fn workers_or_all(workers: Option<usize>) -> usize {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let cap = (cores * MAX_WORKERS_PER_CORE).max(64);
    match workers {
        None => cores,
        Some(0) => {
            sluice::msg::note("--workers 0 taken as 1");
            1
        }
        Some(w) if w > cap => {
            sluice::msg::note(format!(
                "--workers {w} is more than {MAX_WORKERS_PER_CORE} per core on this \
                 machine ({cores} cores): using {cap}"
            ));
            cap
        }
        Some(w) => w,
    }
}

/// The `--set` overrides, with `--no-shuffle` as the one it stands for.
fn overrides(mut set: Vec<String>, no_shuffle: bool) -> Vec<String> {
    if no_shuffle {
        set.push("tokenize.shuffle=false".into());
    }
    set
}

/// A panic is a bug: said as one, with where it happened. A task that
/// panics fails as a task (the executor catches it); elsewhere the process
/// ends with this message.
fn report_panics() {
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info
            .location()
            .map(|l| format!(" (at {}:{})", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "{}",
            sluice::msg::format(
                sluice::msg::Level::Error,
                format!("{}: {what}{at}", sluice::msg::BUG)
            )
        );
    }));
}

/// The words said when Ctrl-C or SIGTERM ends a run; set before the
/// handler is installed (a signal handler may not allocate).
static INTERRUPTED: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();

extern "C" fn on_signal(sig: libc::c_int) {
    if let Some(msg) = INTERRUPTED.get() {
        // SAFETY: write(2), signal(2) and raise(3) are async-signal-safe;
        // the message was built before the handler was installed.
        unsafe {
            libc::write(2, msg.as_ptr().cast(), msg.len());
        }
    }
    // Die of the signal as before (exit status 130/143), at once: the
    // markers make the rerun resume.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

/// Says, on Ctrl-C or SIGTERM, that the run stopped and how to resume it.
fn say_when_interrupted(spec: &std::path::Path) {
    let msg = format!(
        "\ninterrupted: the run stopped; the tasks it finished are kept. `sluice run {}` \
         resumes it (`--force` starts over)\n",
        spec.display()
    );
    if INTERRUPTED.set(msg.into_bytes()).is_ok() {
        // SAFETY: installs a handler that only writes and re-raises.
        unsafe {
            libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
            libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        }
    }
}

fn main() -> ExitCode {
    // sluice runs the transformer's forward passes in parallel itself;
    // candle's own pool for element-wise ops then only adds barriers
    // (10% of the time, measured). Set here, before any thread starts.
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    report_panics();
    let cli = Cli::parse();
    if let Command::Run { spec, executor, .. } = &cli.command {
        if executor == "local" {
            say_when_interrupted(spec);
        }
    }
    let result = match cli.command {
        Command::Run {
            spec,
            workers,
            force,
            quiet,
            set,
            no_shuffle,
            executor,
            slurm,
        } => {
            let opts = sluice::exec::RunOptions {
                workers: workers_or_all(workers),
                force,
                quiet,
                overrides: overrides(set, no_shuffle),
            };
            match executor.as_str() {
                "local" => sluice::exec::run(&spec, &opts).map(|stats| {
                    print!("{}", stats.table());
                }),
                "slurm" => sluice::exec::load_spec(&spec, &opts).and_then(|s| {
                    let slurm = slurm.over(&s.slurm);
                    sluice::exec::slurm::submit(&spec, &s, &opts, &slurm)
                }),
                other => Err(anyhow::anyhow!(
                    "unknown executor `{other}` (local or slurm)"
                )),
            }
        }
        Command::Task {
            spec,
            phase,
            tasks,
            finish,
            workers,
            quiet,
            set,
            no_shuffle,
        } => {
            let opts = sluice::exec::RunOptions {
                workers: workers_or_all(workers),
                force: false,
                quiet,
                overrides: overrides(set, no_shuffle),
            };
            sluice::exec::load_spec(&spec, &opts).and_then(|s| match phase {
                Some(p) if !finish => sluice::exec::run_tasks(&s, &opts, &p, &tasks),
                _ => sluice::exec::finish_run(&s, &opts).map(|stats| {
                    print!("{}", stats.table());
                }),
            })
        }
        Command::Status { out } => sluice::exec::status::report(&out).map(|r| print!("{r}")),
        Command::Report {
            out,
            compare,
            output,
        } => match (out, compare.as_deref()) {
            (_, Some([a, b])) => sluice::report::compare(a, b, output.as_deref()),
            (Some(out), _) => sluice::report::report(&out, output.as_deref()),
            _ => Err(anyhow::anyhow!(
                "name a run's output folder, or --compare A B"
            )),
        }
        .map(|s| println!("{s}")),
        Command::Inspect {
            path,
            text_column,
            tokenizer,
            doc,
        } => sluice::inspect::inspect(
            &path,
            &text_column,
            &sluice::inspect::TokenOptions { tokenizer, doc },
        )
        .map(|s| print!("{s}")),
        Command::TrainTokenizer {
            spec,
            workers,
            quiet,
        } => sluice::train::tokenizer::run(&spec, workers_or_all(workers), quiet),
        Command::PruneTokenizer {
            spec,
            workers,
            quiet,
        } => sluice::train::tokenizer::prune::run(&spec, workers_or_all(workers), quiet),
        Command::TrainLm {
            spec,
            workers,
            quiet,
        } => sluice::train::lm::run(&spec, workers_or_all(workers), quiet),
        Command::TrainClassifier { spec, quiet } => sluice::train::classifier::run(&spec, quiet),
        Command::Contamination {
            spec,
            workers,
            quiet,
        } => sluice::train::contamination::run(&spec, workers_or_all(workers), quiet),
        Command::Ops { markdown } => {
            print!(
                "{}",
                if markdown {
                    sluice::ops::describe_markdown()
                } else {
                    sluice::ops::describe_all()
                }
            );
            Ok(())
        }
    };
    // This process's staging folder for uploads (empty by now, or holding
    // what a failed upload left).
    let _ = std::fs::remove_dir_all(sluice::io::store::scratch_dir());
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            sluice::msg::error(format!("{e:#}"));
            ExitCode::FAILURE
        }
    }
}
