use observe::monitor_performance;

struct Store;

#[monitor_performance(prefix = "store")]
impl Store {
    fn get(&self) -> u8 {
        1
    }

    #[monitor_performance(name = "store.put")]
    fn put(&self) {}
}

fn main() {
    let _ = Store.get();
    Store.put();
}
