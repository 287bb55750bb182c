use observe::monitor_performance;

const LIMIT: u32 = 5;

#[monitor_performance("op", objective = LIMIT)]
fn f() {}

fn main() {
    f();
}
