use observe::monitor_performance;

struct Store;

// No #[monitor_performance] on the block: there is nothing to skip.
impl Store {
    #[monitor_performance(skip)]
    fn get(&self) -> u8 {
        1
    }
}

fn main() {
    let _ = Store.get();
}
