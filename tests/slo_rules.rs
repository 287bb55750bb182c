//! `docs/prometheus/slo_rules.yml` is what `observe::slo::prometheus_rules`
//! writes for the objectives of `examples/support/objectives.rs` (the
//! `slo_rules` example prints it), so it cannot drift from the generator;
//! and promtool accepts it and passes its unit tests,
//! `docs/prometheus/slo_rules_test.yml`.

use std::path::Path;
use std::process::Command;

#[path = "../examples/support/objectives.rs"]
mod objectives;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_committed_rules_are_the_generated_ones() {
    let fresh = observe::slo::prometheus_rules(objectives::ALL).expect("the objectives are valid");
    let committed = std::fs::read_to_string(root().join("docs/prometheus/slo_rules.yml"))
        .expect("docs/prometheus/slo_rules.yml");
    assert!(
        committed == fresh,
        "docs/prometheus/slo_rules.yml is stale; write it again with\n  \
         cargo run --example slo_rules > docs/prometheus/slo_rules.yml"
    );
}

/// Runs `promtool ARGS` in the repository's root: `None` when promtool is
/// not installed off CI (said on stderr), else its success and output.
/// On CI (`CI` set) a missing promtool fails the test: `.ci/run` installs
/// it.
fn promtool(args: &[&str]) -> Option<(bool, String)> {
    match Command::new("promtool")
        .args(args)
        .current_dir(root())
        .output()
    {
        Ok(out) => Some((
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && std::env::var_os("CI").is_none() => {
            eprintln!("skipped: promtool is not installed ({e}); set CI=1 to make this a failure");
            None
        }
        Err(e) => panic!("promtool {args:?} did not run (.ci/run installs it): {e}"),
    }
}

#[test]
fn promtool_accepts_the_rules() {
    if let Some((ok, said)) = promtool(&["check", "rules", "docs/prometheus/slo_rules.yml"]) {
        assert!(ok, "promtool check rules:\n{said}");
    }
}

/// Each burn-rate pair fires where it should and stays silent where it
/// should (the cases are in the file's comments).
#[test]
fn promtool_passes_the_rules_unit_tests() {
    if let Some((ok, said)) = promtool(&["test", "rules", "docs/prometheus/slo_rules_test.yml"]) {
        assert!(ok, "promtool test rules:\n{said}");
    }
}
