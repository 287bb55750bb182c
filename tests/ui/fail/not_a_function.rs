use observe::monitor_performance;

#[monitor_performance]
struct Config {
    port: u16,
}

fn main() {}
