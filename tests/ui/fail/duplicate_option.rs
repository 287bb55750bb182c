use observe::monitor_performance;

#[monitor_performance(level = "debug", slow = "1s", level = "info")]
fn query() {}

fn main() {}
