use observe::monitor_performance;

#[monitor_performance(level = "loud", foo = 1, slow = "25 parsecs")]
fn query() {}

fn main() {}
