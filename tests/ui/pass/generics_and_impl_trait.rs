use std::fmt::{Debug, Display};

use observe::monitor_performance;

#[monitor_performance]
fn generic<T, U>(t: T, u: U) -> String
where
    T: Display,
    U: Debug + Clone,
{
    format!("{t} {u:?}")
}

#[monitor_performance]
fn impl_arg(items: impl IntoIterator<Item = u32>) -> u32 {
    items.into_iter().sum()
}

#[monitor_performance]
fn impl_return(n: u32) -> impl Iterator<Item = u32> {
    0..n
}

#[monitor_performance]
fn impl_in_result(n: u32) -> Result<impl Display, std::fmt::Error> {
    Ok(n)
}

#[monitor_performance]
async fn async_impl_return<'a>(s: &'a str) -> impl Display + 'a {
    s
}

#[monitor_performance]
fn lifetimes<'a, 'b: 'a>(a: &'a str, _b: &'b str) -> &'a str {
    a
}

#[monitor_performance]
fn generic_result<T: Default, E>() -> Result<T, E> {
    Ok(T::default())
}

fn main() {
    assert_eq!(generic(1, "x"), "1 \"x\"");
    assert_eq!(impl_arg(vec![1, 2]), 3);
    assert_eq!(impl_return(3).count(), 3);
    assert!(impl_in_result(1).is_ok());
    let _ = async_impl_return("a");
    assert_eq!(lifetimes("a", "b"), "a");
    assert_eq!(generic_result::<u8, ()>(), Ok(0));
}
