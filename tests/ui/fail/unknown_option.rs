use observe::monitor_performance;

#[monitor_performance(name = "db.query")]
fn query() {}

fn main() {}
