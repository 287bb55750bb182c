use observe::monitor_performance;

#[monitor_performance("a", sample = 1.5)]
fn a() {}

#[monitor_performance("b", sample = "0.1")]
fn b() {}

fn main() {
    a();
    b();
}
