use observe::monitor_performance;

#[monitor_performance(slow = "25 parsecs")]
fn query() {}

fn main() {}
