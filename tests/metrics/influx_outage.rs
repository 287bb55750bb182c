//! InfluxDB 1.6 stopped mid-run: recording never blocks or panics, points
//! buffer up to the bound, are delivered when the server is back, and the
//! rest are counted as dropped.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::{create_database, eventually, influxql};
use crate::support::Service;
use observe::metrics::influxdb::{AggregatingRecorder, InfluxConfig, InfluxPush};

const DB: &str = "outage";
const BOUND: usize = 5;
const DURING_OUTAGE: usize = 8;

/// Starts the stopped server again on its port and data directory.
fn restart(influx: &Service) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/services/influxdb.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg("start")
        .arg(influx.dir())
        .arg(influx.port.to_string())
        .output()
        .expect("run the recipe");
    assert!(
        out.status.success(),
        "influxdb did not restart: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn tick(recorder: &AggregatingRecorder, phase: &str, round: usize) {
    metrics::with_local_recorder(recorder, || {
        // One new series per round: each interval yields exactly one point.
        metrics::counter!("ticks_total", "phase" => phase.to_owned(), "round" => round.to_string())
            .increment(1);
    });
}

#[test]
fn points_survive_an_outage_up_to_the_bound_and_the_rest_are_counted() {
    let Some(influx) = Service::start_or_skip("influxdb", &[]) else {
        return;
    };
    create_database(&influx.url(), DB);
    let recorder = AggregatingRecorder::default();
    let config = InfluxConfig::v1(&influx.url(), DB)
        .interval(Duration::from_secs(3600)) // intervals end on collect_now
        .buffer_capacity(BOUND)
        .timeout(Duration::from_secs(2))
        .retry_backoff(Duration::from_millis(50), Duration::from_millis(200));
    let push = InfluxPush::start("outage-test", config, &recorder).expect("start");

    tick(&recorder, "before", 0);
    push.collect_now();
    eventually("the first point delivered", || {
        Ok((push.stats().points_written == 1).then_some(()))
    });

    influx.stop();
    for round in 0..DURING_OUTAGE {
        tick(&recorder, "outage", round);
        push.collect_now();
    }
    let during = eventually("writes failing", || {
        let s = push.stats();
        Ok((s.failed_requests > 0).then_some(s))
    });
    assert_eq!(during.points_written, 1);
    assert_eq!(during.buffered, BOUND as u64);
    assert_eq!(during.dropped_buffer_full, (DURING_OUTAGE - BOUND) as u64);

    restart(&influx);
    let after = eventually("the buffered points delivered", || {
        let s = push.stats();
        Ok((s.buffered == 0).then_some(s))
    });
    assert_eq!(after.points_written, 1 + BOUND as u64);
    assert_eq!(
        after.points_written + after.dropped_buffer_full,
        after.points_queued,
        "each point is delivered or counted as dropped: {after:?}"
    );

    // What InfluxDB holds: the newest BOUND rounds of the outage (the
    // oldest were dropped first) and the point from before it.
    let rounds = influxql(
        &influx.url(),
        DB,
        r#"SELECT "value" FROM "service_counters" WHERE "metric" = 'ticks_total' AND "phase" = 'outage' GROUP BY "round""#,
    )
    .expect("query");
    let mut got: Vec<usize> = rounds
        .iter()
        .filter_map(|s| s["tags"]["round"].as_str()?.parse().ok())
        .collect();
    got.sort_unstable();
    assert_eq!(
        got,
        ((DURING_OUTAGE - BOUND)..DURING_OUTAGE).collect::<Vec<_>>()
    );
    let before = influxql(
        &influx.url(),
        DB,
        r#"SELECT "value", "service" FROM "service_counters" WHERE "phase" = 'before'"#,
    )
    .expect("query");
    assert_eq!(before[0]["values"][0][1], 1, "{before:?}");
    assert_eq!(before[0]["values"][0][2], "outage-test", "{before:?}");

    let last = push.stop(Duration::from_secs(5));
    assert_eq!(last.dropped_shutdown, 0);
}
