use observe::monitor_performance;

#[monitor_performance(prefix = "store")]
fn get() -> u8 {
    1
}

fn main() {
    let _ = get();
}
