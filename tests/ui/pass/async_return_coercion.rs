//! An `async fn`'s returns coerce to its declared type, as without the
//! attribute; and its future is `UnwindSafe` whenever the body is.

use std::fmt::Display;
use std::sync::Arc;

use observe::monitor_performance;

struct Sensor {
    name: String,
    readings: Vec<u32>,
}

impl Sensor {
    #[monitor_performance]
    async fn name(&self) -> &str {
        &self.name
    }

    #[monitor_performance]
    async fn readings(&self) -> &[u32] {
        &self.readings
    }
}

#[monitor_performance]
async fn shared() -> Arc<dyn Display + Send + Sync> {
    Arc::new(5)
}

#[monitor_performance]
async fn boxed(number: bool) -> Box<dyn Display> {
    if number {
        return Box::new(1);
    }
    Box::new("x")
}

#[monitor_performance]
async fn borrowed(s: &mut String) -> &str {
    s
}

#[monitor_performance]
async fn may_panic(id: u32) -> u32 {
    assert!(id != 0, "bad id");
    id
}

fn assert_unwind_safe<T: std::panic::UnwindSafe>(t: T) -> T {
    t
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

fn main() {
    let sensor = Sensor {
        name: "kitchen".into(),
        readings: vec![1, 2],
    };
    assert_eq!(block_on(sensor.name()), "kitchen");
    assert_eq!(block_on(sensor.readings()), [1, 2]);
    assert_eq!(block_on(shared()).to_string(), "5");
    assert_eq!(block_on(boxed(false)).to_string(), "x");
    let mut s = String::from("y");
    assert_eq!(block_on(borrowed(&mut s)), "y");
    let call = assert_unwind_safe(may_panic(0));
    assert!(std::panic::catch_unwind(move || block_on(call)).is_err());
    assert_eq!(block_on(assert_unwind_safe(may_panic(3))), 3);
}
