use observe::monitor_performance;

struct Store;

#[monitor_performance]
impl Store {
    #[monitor_performance(skip, level = "debug")]
    fn get(&self) -> u8 {
        1
    }
}

fn main() {
    let _ = Store.get();
}
