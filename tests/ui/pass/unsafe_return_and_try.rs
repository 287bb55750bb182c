use observe::monitor_performance;

#[monitor_performance]
unsafe fn read(p: *const u8) -> u8 {
    unsafe { *p }
}

#[monitor_performance]
fn early_return(x: i32) -> i32 {
    if x < 0 {
        return 0;
    }
    x * 2
}

#[monitor_performance]
fn question_mark(s: &str) -> Result<i64, std::num::ParseIntError> {
    let v: i64 = s.parse()?;
    Ok(v + 1)
}

#[monitor_performance]
fn boxed_error(s: &str) -> Result<u8, Box<dyn std::error::Error + Send + Sync>> {
    Ok(s.parse::<u8>()?)
}

#[monitor_performance]
fn anyhow_result(s: &str) -> anyhow::Result<u8> {
    let v = s.parse::<u8>()?;
    anyhow::ensure!(v > 0, "must be positive");
    Ok(v)
}

#[monitor_performance]
async fn async_try(s: &str) -> std::io::Result<usize> {
    if s.is_empty() {
        return Err(std::io::Error::other("empty"));
    }
    let n = s.len();
    Ok(n)
}

mod user {
    // A user type named `Result` that is not `core::result::Result`.
    pub enum Result {
        Ok,
        Err(u8),
    }
}

#[monitor_performance]
fn not_a_result(x: u8) -> user::Result {
    if x == 0 { user::Result::Err(x) } else { user::Result::Ok }
}

type Res<T> = std::result::Result<T, String>;

#[monitor_performance]
fn alias(x: u8) -> Res<u8> {
    if x == 0 { Err("zero".to_owned()) } else { Ok(x) }
}

#[monitor_performance]
fn never_returns() -> ! {
    std::process::exit(0)
}

#[monitor_performance("ctx.op", context(user = name, len = name.len(), shown = %name, dbg = ?name))]
fn with_context(name: &str) -> usize {
    name.len()
}

fn main() {
    let b = 5u8;
    assert_eq!(unsafe { read(&b) }, 5);
    assert_eq!(early_return(-1), 0);
    assert!(question_mark("x").is_err());
    assert!(boxed_error("1").is_ok());
    assert!(anyhow_result("0").is_err());
    let _ = async_try("");
    assert!(matches!(not_a_result(1), user::Result::Ok));
    assert!(alias(0).is_err());
    assert_eq!(with_context("ab"), 2);
    if b == 0 {
        never_returns();
    }
}
