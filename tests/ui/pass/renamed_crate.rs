extern crate observe as obs;

mod inner {
    #[obs::monitor_performance("renamed", crate = ::obs)]
    pub fn f() -> u8 {
        1
    }
}

fn main() {
    assert_eq!(inner::f(), 1);
}
