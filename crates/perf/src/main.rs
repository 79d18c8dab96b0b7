//! `warren-perf`: parse the options, run the load on a multi-threaded tokio runtime,
//! print the human summary on stderr and the JSON summary to stdout or `--json`.

use std::process::ExitCode;

use clap::Parser;
use warren_perf::Options;

fn main() -> ExitCode {
    let options = Options::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("warren-perf: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let quiet = options.quiet;
    let json = options.json.clone();
    let summary = match runtime.block_on(warren_perf::run(options)) {
        Ok(summary) => summary,
        Err(e) => {
            eprintln!("warren-perf: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !quiet {
        eprint!("{summary}");
    }
    if let Err(e) = summary.write_json(&json) {
        eprintln!(
            "warren-perf: writing the summary to {}: {e}",
            json.display()
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
