use observe::monitor_performance;

#[monitor_performance(level = "debug", "db.query")]
fn query() {}

fn main() {}
