use observe::monitor_performance;

#[monitor_performance(42)]
fn load() {}

fn main() {}
