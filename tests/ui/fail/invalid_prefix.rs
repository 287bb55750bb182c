use observe::monitor_performance;

struct Store;

#[monitor_performance(prefix = "my store")]
impl Store {
    fn get(&self) -> u8 {
        1
    }
}

fn main() {
    let _ = Store.get();
}
