//! A `main` for the test binaries that start themselves as child processes
//! (`harness = false`), standing in for libtest's.

/// The `main` of a test binary without the libtest harness that holds the
/// one test `name`: it answers `--list` and name filters as libtest does,
/// runs `test` (a panic fails the binary) and prints libtest's lines.
pub(crate) fn run_single_test(name: &str, test: fn()) -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        println!("{name}: test");
        return std::process::ExitCode::SUCCESS;
    }
    if let Some(filter) = args.iter().find(|a| !a.starts_with('-')) {
        if !name.contains(filter.as_str()) {
            println!("test result: ok. 0 passed; 0 failed; 1 filtered out");
            return std::process::ExitCode::SUCCESS;
        }
    }
    test();
    println!("test {name} ... ok");
    std::process::ExitCode::SUCCESS
}
