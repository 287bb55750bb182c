#![deny(warnings)]

use std::sync::Arc;

use observe::monitor_performance;

struct Store {
    items: Vec<u32>,
}

macro_rules! getter {
    ($name:ident) => {
        fn $name(&self) -> usize {
            self.items.len()
        }
    };
}

#[monitor_performance(prefix = "store", level = "debug", slow = "250ms")]
impl Store {
    const LIMIT: usize = 10;

    fn new() -> Self {
        Self { items: vec![1] }
    }

    fn by_ref(&self, i: usize) -> Option<&u32> {
        self.items.get(i)
    }

    fn by_mut(&mut self, v: u32) -> &mut u32 {
        self.items.push(v);
        let last = self.items.len() - 1;
        &mut self.items[last]
    }

    fn by_arc(self: Arc<Self>) -> usize {
        self.items.len()
    }

    fn by_value(self) -> Result<usize, std::io::Error> {
        if self.items.len() > Self::LIMIT {
            return Err(std::io::Error::other("full"));
        }
        Ok(self.items.len())
    }

    async fn async_by_ref(&self) -> usize {
        self.items.len()
    }

    // Own name and options, the block's for the rest.
    #[monitor_performance("store.lookup", level = "info", context(index = i))]
    fn lookup(&self, i: usize) -> u32 {
        self.items[i]
    }

    #[monitor_performance(skip)]
    fn hot(&self) -> usize {
        self.items.len()
    }

    // A `const fn` is left alone.
    const fn limit() -> usize {
        Self::LIMIT
    }

    unsafe fn raw(&self) -> u32 {
        // SAFETY: callers pass a non-empty store.
        unsafe { *self.items.get_unchecked(0) }
    }

    getter!(len);
}

fn main() {
    let mut s = Store::new();
    *s.by_mut(2) += 1;
    assert_eq!(s.by_ref(1), Some(&3));
    assert_eq!(s.lookup(0), 1);
    assert_eq!(s.hot(), 2);
    assert_eq!(s.len(), 2);
    assert_eq!(unsafe { s.raw() }, 1);
    const { assert!(Store::limit() == 10) };
    let _ = s.async_by_ref();
    assert_eq!(Arc::new(Store { items: vec![] }).by_arc(), 0);
    assert_eq!(s.by_value().ok(), Some(2));
}
