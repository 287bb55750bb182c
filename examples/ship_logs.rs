//! Ships the JSON lines of N monitored calls (every fifth one failing) to
//! the chosen collectors, flushes, and prints each sink's sent and dropped
//! counts on standard error. Lines also go to standard output unless
//! `--quiet`; with no flags, standard output is the only sink.
//!
//! ```text
//! cargo run --example ship_logs -- --logstash 127.0.0.1:5000 --udp 127.0.0.1:5000 \
//!     --elasticsearch http://127.0.0.1:9200 --file /tmp/ship.log --lines 1000 --quiet
//! ```

use std::process::ExitCode;
use std::time::Duration;

use observe::sink::{ElasticsearchSink, FileSink, SinkStats, TcpSink, UdpSink};
use observe::{Observe, monitor_performance};

const USAGE: &str = "usage: ship_logs [--logstash HOST:PORT] [--udp HOST:PORT] [--elasticsearch URL] [--file PATH] [--lines N] [--quiet]";

#[derive(Debug)]
struct Rejected(u64);

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "event {} rejected by the store", self.0)
    }
}

impl std::error::Error for Rejected {}

/// The monitored call: one line per call, through every sink.
#[monitor_performance("ingest_event", context(event_id = id))]
fn ingest(id: u64) -> Result<u64, Rejected> {
    if id % 5 == 4 {
        Err(Rejected(id))
    } else {
        Ok(id * 2)
    }
}

#[derive(Debug, Default)]
struct Args {
    logstash: Option<String>,
    udp: Option<String>,
    elasticsearch: Option<String>,
    file: Option<String>,
    lines: u64,
    quiet: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        lines: 1000,
        ..Args::default()
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--logstash" => args.logstash = Some(value()?),
            "--udp" => args.udp = Some(value()?),
            "--elasticsearch" => args.elasticsearch = Some(value()?),
            "--file" => args.file = Some(value()?),
            "--lines" => {
                let v = value()?;
                args.lines = v
                    .parse()
                    .map_err(|_| format!("--lines: {v:?} is not a number"))?;
            }
            "--quiet" => args.quiet = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

/// A sink's counts, read after the flush.
type Stats = Box<dyn Fn() -> SinkStats>;

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("ship_logs: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(all_delivered) if all_delivered => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => {
            eprintln!("ship_logs: {e}");
            ExitCode::from(2)
        }
    }
}

/// Returns whether every sink delivered every line.
fn run(args: &Args) -> Result<bool, Box<dyn std::error::Error>> {
    let mut builder = Observe::builder("ship-logs");
    let mut sinks: Vec<(&str, Stats)> = Vec::new();
    if let Some(addr) = &args.logstash {
        let sink = TcpSink::builder(addr.as_str()).name("logstash").build()?;
        builder = builder.sink(sink.clone());
        sinks.push(("logstash", Box::new(move || sink.stats())));
    }
    if let Some(addr) = &args.udp {
        let sink = UdpSink::new(addr.as_str())?;
        builder = builder.sink(sink.clone());
        sinks.push(("udp", Box::new(move || sink.stats())));
    }
    if let Some(url) = &args.elasticsearch {
        let sink = ElasticsearchSink::new(url.as_str())?;
        builder = builder.sink(sink.clone());
        sinks.push(("elasticsearch", Box::new(move || sink.stats())));
    }
    if let Some(path) = &args.file {
        let sink = FileSink::new(path)?;
        builder = builder.sink(sink.clone());
        sinks.push(("file", Box::new(move || sink.stats())));
    }
    if !args.quiet {
        builder = builder.stdout();
    }
    let guard = builder.install()?;

    let mut failed = 0;
    for id in 0..args.lines {
        if ingest(id).is_err() {
            failed += 1;
        }
    }
    let complete = guard.flush(Duration::from_secs(30));
    eprintln!("ship_logs: {} calls, {failed} failed", args.lines);
    let mut all = complete;
    for (name, stats) in &sinks {
        let s = stats();
        all &= s.sent == args.lines && s.dropped == 0;
        eprintln!(
            "sink={name} sent={} dropped={} rejected={}{}",
            s.sent,
            s.dropped,
            s.rejected,
            s.last_error
                .map(|e| format!(" last_error={e:?}"))
                .unwrap_or_default()
        );
    }
    Ok(all)
}
