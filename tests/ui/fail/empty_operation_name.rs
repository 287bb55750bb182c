use observe::monitor_performance;

#[monitor_performance("")]
fn load() {}

fn main() {}
