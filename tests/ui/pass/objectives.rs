#![deny(warnings)]

use std::time::Duration;

use observe::monitor_performance;
use observe::slo::Objective;

mod slos {
    use super::*;

    pub const API: Objective = Objective::new("api").success_rate(99.9);
}

const FAST: Objective = Objective::new("fast").latency(Duration::from_millis(100), 99.0);

#[monitor_performance("a", objective = slos::API)]
fn a() {}

#[monitor_performance(objective = FAST)]
async fn b() {}

struct S;

#[monitor_performance(objective = FAST)]
impl S {
    fn c(&self) {}

    #[monitor_performance(objective = crate::slos::API)]
    fn d<T: Clone>(&self, t: T) -> T {
        t
    }
}

fn main() {
    a();
    drop(b());
    S.c();
    let _ = S.d(1);
}
