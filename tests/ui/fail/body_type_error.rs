use observe::monitor_performance;

#[monitor_performance]
fn count() -> u32 {
    "forty-two"
}

fn main() {}
