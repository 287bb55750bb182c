use observe::monitor_performance;

#[monitor_performance]
fn plain() {}

#[monitor_performance("named.op")]
fn named(x: u32) -> u32 {
    x + 1
}

#[monitor_performance("async.op")]
async fn fetch(id: u64) -> Result<u64, std::io::Error> {
    Ok(id)
}

#[monitor_performance(level = "debug", slow = "250ms")]
pub(crate) fn with_options() -> bool {
    true
}

fn main() {
    plain();
    assert_eq!(named(1), 2);
    let _ = fetch(3);
    assert!(with_options());
}
