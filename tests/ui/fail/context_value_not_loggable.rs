use observe::monitor_performance;

struct Config {
    port: u16,
}

#[monitor_performance(context(config = cfg))]
fn start(cfg: Config) -> u16 {
    cfg.port
}

fn main() {}
