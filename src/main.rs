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
        /// Write tokenized shards in input order (the `tokenize` step's
        /// `shuffle = false`).
        #[arg(long)]
        no_shuffle: bool,
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
    /// Lists the operators with their parameters, defaults and drop reasons.
    Ops,
}

/// `--workers`, or every core.
fn workers_or_all(workers: Option<usize>) -> usize {
    workers.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run {
            spec,
            workers,
            force,
            quiet,
            no_shuffle,
        } => {
            let opts = sluice::exec::RunOptions {
                workers: workers_or_all(workers),
                force,
                quiet,
                no_shuffle,
            };
            sluice::exec::run(&spec, &opts).map(|stats| {
                print!("{}", stats.table());
            })
        }
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
        } => sluice::tokenizer::train::run(&spec, workers_or_all(workers), quiet),
        Command::TrainClassifier { spec, quiet } => sluice::classifier::run(&spec, quiet),
        Command::Ops => {
            print!("{}", sluice::ops::describe_all());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
