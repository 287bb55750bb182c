//! Checks JSON log lines against the observe schema.
//!
//! Reads lines from standard input until the first line that is not a JSON
//! object (e.g. a Prometheus exposition), validates each with
//! `LogValidator`, and exits non-zero naming the first wrong field.
//!
//! ```text
//! cargo run --example quickstart | cargo run --example validate_logs
//! ```

use std::io::BufRead;
use std::process::ExitCode;

use observe::log::LogValidator;

fn main() -> ExitCode {
    let mut checked = 0usize;
    for (n, line) in std::io::stdin().lock().lines().enumerate() {
        let Ok(line) = line else {
            eprintln!("line {}: not UTF-8", n + 1);
            return ExitCode::FAILURE;
        };
        if !line.starts_with('{') {
            break;
        }
        if let Err(e) = LogValidator::validate_line(&line) {
            eprintln!("line {}: {e}\n  {line}", n + 1);
            return ExitCode::FAILURE;
        }
        checked += 1;
    }
    if checked == 0 {
        eprintln!("no log lines on standard input");
        return ExitCode::FAILURE;
    }
    println!("{checked} log lines valid");
    ExitCode::SUCCESS
}
