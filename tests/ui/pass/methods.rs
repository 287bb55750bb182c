use std::sync::Arc;

use observe::monitor_performance;

struct Store {
    items: Vec<u32>,
}

impl Store {
    #[monitor_performance]
    fn by_value(self) -> usize {
        self.items.len()
    }

    #[monitor_performance("store.get")]
    fn by_ref(&self, i: usize) -> Option<&u32> {
        self.items.get(i)
    }

    #[monitor_performance]
    fn by_mut(&mut self, v: u32) -> &mut u32 {
        self.items.push(v);
        let last = self.items.len() - 1;
        &mut self.items[last]
    }

    #[monitor_performance]
    fn by_arc(self: Arc<Self>) -> usize {
        self.items.len()
    }

    #[monitor_performance]
    async fn async_by_ref(&self) -> usize {
        self.items.len()
    }

    #[monitor_performance]
    async fn async_by_mut(&mut self) -> &mut Vec<u32> {
        &mut self.items
    }

    #[monitor_performance]
    fn associated() -> Self {
        Self { items: vec![1] }
    }
}

fn main() {
    let mut s = Store::associated();
    *s.by_mut(2) += 1;
    assert_eq!(s.by_ref(1), Some(&3));
    let _ = s.async_by_ref();
    assert_eq!(Arc::new(Store { items: vec![] }).by_arc(), 0);
    assert_eq!(s.by_value(), 2);
}
