use observe::monitor_performance;

#[monitor_performance]
#[track_caller]
fn checked(x: u32) -> u32 {
    assert!(x > 0, "{}", std::panic::Location::caller());
    x
}

fn main() {}
