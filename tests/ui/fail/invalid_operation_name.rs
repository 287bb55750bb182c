use observe::monitor_performance;

#[monitor_performance("a b")]
fn load() {}

fn main() {}
