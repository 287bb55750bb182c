use observe::monitor_performance;

#[monitor_performance(slow = "0ms")]
fn query() {}

fn main() {}
