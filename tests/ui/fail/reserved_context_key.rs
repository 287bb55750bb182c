use observe::monitor_performance;

#[monitor_performance(context(error_type = kind))]
fn classify(kind: &str) -> Result<(), std::fmt::Error> {
    let _ = kind;
    Ok(())
}

fn main() {}
