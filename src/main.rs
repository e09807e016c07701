//! splitwise: command-line entry point (dispatch only; everything else is in the library).

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    splitwise::device::default_burn_device_to_cpu();
    let cli = splitwise::cli::Cli::parse();
    match splitwise::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
