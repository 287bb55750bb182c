use observe::monitor_performance;

#[monitor_performance]
fn café() -> u32 {
    42
}

// An explicit name is the way out, and compiles.
#[monitor_performance("cafe")]
fn crème() -> u32 {
    42
}

fn main() {}
