#![deny(warnings)]

use observe::monitor_performance;

#[async_trait::async_trait]
trait Boxed {
    async fn get(&self, id: u32) -> Result<u32, String>;
    async fn name(&self) -> String;
    fn sync(&self) -> u32;
}

struct A;

// `#[async_trait]` first: the block sees the boxed futures it wrote and
// instruments inside them.
#[async_trait::async_trait]
#[monitor_performance(prefix = "a")]
impl Boxed for A {
    async fn get(&self, id: u32) -> Result<u32, String> {
        if id == 0 {
            return Err("zero".into());
        }
        Ok(id)
    }

    #[monitor_performance("a.named", context(me = "a"))]
    async fn name(&self) -> String {
        "a".into()
    }

    fn sync(&self) -> u32 {
        1
    }
}

struct B {
    id: u32,
}

// The block first: it instruments the `async fn`s, which `#[async_trait]`
// then boxes.
#[monitor_performance(level = "debug")]
#[async_trait::async_trait]
impl Boxed for B {
    async fn get(&self, id: u32) -> Result<u32, String> {
        if id == self.id {
            return Err("same".into());
        }
        Ok(id)
    }

    #[monitor_performance(context(id = self.id))]
    async fn name(&self) -> String {
        format!("b{}", self.id)
    }

    #[monitor_performance(skip)]
    fn sync(&self) -> u32 {
        self.id
    }
}

fn assert_send<T: Send>(_: T) {}

fn main() {
    assert_send(A.get(1));
    assert_send(A.name());
    assert_eq!(A.sync(), 1);
    let b = B { id: 2 };
    assert_send(b.get(1));
    assert_send(b.name());
    assert_eq!(b.sync(), 2);
}
