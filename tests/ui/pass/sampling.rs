#![deny(warnings)]

use observe::monitor_performance;

#[monitor_performance("a", sample = 0.01)]
fn a() {}

#[monitor_performance(sample = 1)]
async fn b() {}

struct S;

#[monitor_performance(sample = 0.5)]
impl S {
    fn c(&self) {}

    #[monitor_performance(sample = 0)]
    fn d(&self) {}
}

fn main() {
    a();
    drop(b());
    S.c();
    S.d();
}
