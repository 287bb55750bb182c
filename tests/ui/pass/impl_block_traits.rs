#![deny(warnings)]

use std::fmt::Debug;

use observe::monitor_performance;

trait Repo {
    type Key;
    const NAME: &'static str;

    fn get(&self, key: Self::Key) -> Option<String>;
    async fn load(&self, key: Self::Key) -> Result<String, std::io::Error>;
    fn describe(&self) -> &'static str {
        Self::NAME
    }
}

struct Mem;

// A trait impl: still named after the self type (`Mem.get`).
#[monitor_performance]
impl Repo for Mem {
    type Key = u32;
    const NAME: &'static str = "mem";

    fn get(&self, key: u32) -> Option<String> {
        Some(key.to_string())
    }

    async fn load(&self, key: u32) -> Result<String, std::io::Error> {
        self.get(key).ok_or_else(|| std::io::Error::other("missing"))
    }
}

struct Wrapper<T, const N: usize>(T);

// A generic impl with a where clause.
#[monitor_performance(level = "debug")]
impl<T, const N: usize> Wrapper<T, N>
where
    T: Debug + Clone + Send,
{
    fn inner(&self) -> T {
        self.0.clone()
    }

    fn map<U, F>(self, f: F) -> Wrapper<U, N>
    where
        F: FnOnce(T) -> U,
    {
        Wrapper(f(self.0))
    }

    fn show(&self, extra: impl Debug) -> impl Debug + '_ {
        let _ = extra;
        &self.0
    }

    async fn later(&self) -> T {
        self.0.clone()
    }
}

// A trait impl for a reference is named after the type behind it.
#[monitor_performance(crate = ::observe)]
impl<'a> Repo for &'a Mem {
    type Key = &'a str;
    const NAME: &'static str = "ref";

    fn get(&self, key: &'a str) -> Option<String> {
        Some(key.to_owned())
    }

    async fn load(&self, key: &'a str) -> Result<String, std::io::Error> {
        Ok(key.to_owned())
    }
}

// A type without a name of its own needs a prefix.
#[monitor_performance(prefix = "slice")]
impl<T: Clone> Repo for [T] {
    type Key = usize;
    const NAME: &'static str = "slice";

    fn get(&self, key: usize) -> Option<String> {
        self.get(key).map(|_| key.to_string())
    }

    async fn load(&self, key: usize) -> Result<String, std::io::Error> {
        Repo::get(self, key).ok_or_else(|| std::io::Error::other("missing"))
    }
}

fn main() {
    assert_eq!(Mem.get(1).as_deref(), Some("1"));
    assert_eq!(Mem.describe(), "mem");
    let _ = Mem.load(1);
    let w: Wrapper<u8, 2> = Wrapper(3);
    assert_eq!(w.inner(), 3);
    let _ = format!("{:?}", w.show(1));
    let _ = w.later();
    assert_eq!(w.map(u16::from).0, 3);
    assert_eq!(<&Mem as Repo>::get(&&Mem, "k").as_deref(), Some("k"));
    let _ = <&Mem as Repo>::load(&&Mem, "k");
    assert_eq!(<[u8] as Repo>::get(&[1u8], 0).as_deref(), Some("0"));
    let _ = <[u8] as Repo>::load(&[1u8], 0);
}
