//! Monitored calls with a fixed mix of outcomes (7 successes, 2 errors and
//! 1 panic in every 10) and the system sampler, for `--duration` seconds;
//! their metrics are served on `/metrics` and pushed to InfluxDB, and a
//! final flush happens on exit. Log lines go to standard output, the
//! final exposition follows them.
//!
//! ```text
//! # 10 s, no back-end
//! cargo run --example metrics_backends
//! # serve /metrics and push to InfluxDB 1.x for 30 s
//! cargo run --example metrics_backends -- \
//!     --prometheus 127.0.0.1:9464 \
//!     --influxdb http://127.0.0.1:8086 --influx-db observe \
//!     --duration 30
//! # push to InfluxDB 2.x
//! cargo run --example metrics_backends -- \
//!     --influxdb http://127.0.0.1:8086 --org my-org --bucket metrics --token T
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use observe::metrics::MetricsCollector;
use observe::metrics::influxdb::InfluxConfig;
use observe::{Observe, monitor_performance};

const USAGE: &str = "usage: metrics_backends [--prometheus ADDR] [--influxdb URL (--influx-db NAME | --org ORG --bucket BUCKET --token TOKEN)] [--duration SECONDS]";

/// Marks the panics this example provokes, so the panic hook stays quiet
/// about them.
const SIMULATED: &str = "simulated panic";

#[derive(Debug, Default)]
struct Args {
    prometheus: Option<SocketAddr>,
    influxdb: Option<String>,
    influx_db: Option<String>,
    org: Option<String>,
    bucket: Option<String>,
    token: Option<String>,
    duration: Option<u64>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args::default();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--prometheus" => {
                let v = value()?;
                args.prometheus = Some(v.parse().map_err(|e| format!("--prometheus {v}: {e}"))?);
            }
            "--influxdb" => args.influxdb = Some(value()?),
            "--influx-db" => args.influx_db = Some(value()?),
            "--org" => args.org = Some(value()?),
            "--bucket" => args.bucket = Some(value()?),
            "--token" => args.token = Some(value()?),
            "--duration" => {
                let v = value()?;
                args.duration = Some(v.parse().map_err(|e| format!("--duration {v}: {e}"))?);
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

/// The InfluxDB configuration the flags ask for, if any.
fn influx_config(args: &Args) -> Result<Option<InfluxConfig>, String> {
    let Some(url) = &args.influxdb else {
        if args.influx_db.is_some() || args.bucket.is_some() {
            return Err("--influx-db and --bucket need --influxdb URL".into());
        }
        return Ok(None);
    };
    let config = match (&args.influx_db, &args.bucket) {
        (Some(db), None) => InfluxConfig::v1(url, db).create_database(true),
        (None, Some(bucket)) => InfluxConfig::v2(
            url,
            args.org.as_deref().unwrap_or_default(),
            bucket,
            args.token.as_deref().unwrap_or_default(),
        ),
        _ => return Err("--influxdb needs either --influx-db NAME (v1) or --bucket (v2)".into()),
    };
    Ok(Some(config.interval(Duration::from_secs(2))))
}

#[derive(Debug)]
struct ChargeError(u32);

impl std::fmt::Display for ChargeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "card declined for order {}", self.0)
    }
}

impl std::error::Error for ChargeError {}

/// Takes 1-10 ms; the outcome depends on the order number only.
#[monitor_performance("charge_card", context(order = order))]
fn charge(order: u32) -> Result<u32, ChargeError> {
    std::thread::sleep(Duration::from_millis(u64::from(order % 10) + 1));
    match order % 10 {
        7 | 8 => Err(ChargeError(order)),
        9 => std::panic::panic_any(SIMULATED),
        _ => Ok(order),
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        // `--help`: the usage alone, and success.
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let influx = match influx_config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args, influx) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("metrics_backends: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args, influx: Option<InfluxConfig>) -> Result<(), Box<dyn std::error::Error>> {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&SIMULATED) {
            default_hook(info);
        }
    }));

    let mut builder = Observe::builder("metrics-demo").system_metrics(Duration::from_secs(5));
    if let Some(addr) = args.prometheus {
        builder = builder.metrics_listener(addr);
        eprintln!("serving http://{addr}/metrics");
    }
    if let Some(config) = influx {
        builder = builder.influxdb(config);
    }
    let guard = builder.install()?;

    let metrics = MetricsCollector::new();
    let duration = Duration::from_secs(args.duration.unwrap_or(10));
    let start = Instant::now();
    let mut order = 0u32;
    while start.elapsed() < duration {
        let outcome = std::panic::catch_unwind(|| charge(order));
        let status = match outcome {
            Ok(Ok(_)) => "success",
            Ok(Err(_)) => "error",
            Err(_) => "panic",
        };
        metrics.record_counter("orders_processed", 1, &[("status", status)]);
        metrics.record_gauge("orders_in_queue", f64::from(100 - order % 100), &[]);
        order = order.wrapping_add(1);
        std::thread::sleep(Duration::from_millis(20));
    }
    let exposition = guard.render().unwrap_or_default();
    eprintln!(
        "{order} calls in {:.1} s; flushing",
        start.elapsed().as_secs_f64()
    );
    drop(guard); // the final flush: sinks, then the InfluxDB push
    print!("{exposition}");
    Ok(())
}
