use observe::monitor_performance;

trait Repo {
    async fn load(&self, id: u32) -> Result<String, std::io::Error>;

    #[monitor_performance("repo.default")]
    async fn with_default(&self) -> u32 {
        7
    }

    #[monitor_performance]
    fn sync_default(&self) -> u32 {
        1
    }
}

struct Mem;

impl Repo for Mem {
    #[monitor_performance("repo.load")]
    async fn load(&self, id: u32) -> Result<String, std::io::Error> {
        Ok(id.to_string())
    }
}

#[async_trait::async_trait]
trait Boxed {
    async fn get(&self, id: u32) -> Result<u32, String>;
}

struct B;

// `#[async_trait]` on the impl expands first; the attribute then sees the
// boxed future and instruments inside it.
#[async_trait::async_trait]
impl Boxed for B {
    #[monitor_performance("boxed.get")]
    async fn get(&self, id: u32) -> Result<u32, String> {
        if id == 0 {
            return Err("zero".into());
        }
        Ok(id)
    }
}

struct C;

// The other order: the attribute sits below another attribute on the method.
#[async_trait::async_trait]
impl Boxed for C {
    #[allow(clippy::needless_return)]
    #[monitor_performance]
    async fn get(&self, id: u32) -> Result<u32, String> {
        return Ok(id);
    }
}

fn main() {
    let _ = Mem.load(1);
    let _ = Mem.with_default();
    assert_eq!(Mem.sync_default(), 1);
    let _ = B.get(1);
    let _ = C.get(1);
}
