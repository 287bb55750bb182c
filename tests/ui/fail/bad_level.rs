use observe::monitor_performance;

#[monitor_performance(level = "verbose")]
fn query() {}

fn main() {}
