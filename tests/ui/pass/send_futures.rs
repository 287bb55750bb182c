use std::rc::Rc;

use observe::monitor_performance;

fn assert_send<T: Send>(t: T) -> T {
    t
}

#[monitor_performance]
async fn plain(x: u32) -> Result<u32, std::io::Error> {
    Ok(x)
}

// The output is not `Send`, but it is never held across an await: the
// future stays `Send`, as it is without the attribute.
#[monitor_performance]
async fn returns_rc(x: u8) -> Rc<u8> {
    std::future::ready(()).await;
    Rc::new(x)
}

#[monitor_performance(context(n = x))]
async fn with_context(x: u32) -> u32 {
    std::future::ready(()).await;
    x
}

fn main() {
    drop(assert_send(plain(1)));
    drop(assert_send(returns_rc(1)));
    drop(assert_send(with_context(1)));
}
