use observe::monitor_performance;

struct Store;

#[monitor_performance(level = "debug", context(id = id))]
impl Store {
    fn get(&self, id: u8) -> u8 {
        id
    }
}

fn main() {
    let _ = Store.get(1);
}
