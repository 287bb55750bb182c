use observe::monitor_performance;

#[monitor_performance("op", objective = "api")]
fn f() {}

fn main() {
    f();
}
