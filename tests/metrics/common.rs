//! Helpers of the metrics back-end tests and of `ha_ingestor_backends`:
//! HTTP through `curl` (which the service recipes need anyway) and polling
//! a real server until it shows what was sent.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to show data: generous, since a slow CI
/// machine only makes the tests slower, never wrong.
pub(crate) const PATIENCE: Duration = Duration::from_secs(90);

/// `GET url` with URL-encoded `params`; the body, or the error.
pub(crate) fn get(url: &str, params: &[(&str, &str)]) -> Result<String, String> {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "10", "-G", url]);
    for (k, v) in params {
        cmd.arg("--data-urlencode").arg(format!("{k}={v}"));
    }
    run(cmd, None)
}

/// `POST url` with `body`; the HTTP status and body.
pub(crate) fn post(url: &str, body: &[u8], headers: &[&str]) -> Result<(u16, String), String> {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "--max-time",
        "10",
        "-X",
        "POST",
        "--data-binary",
        "@-",
        "-w",
        "\n%{http_code}",
        url,
    ]);
    for h in headers {
        cmd.arg("-H").arg(h);
    }
    let out = run(cmd, Some(body))?;
    let (body, status) = out.rsplit_once('\n').ok_or("no status")?;
    Ok((
        status.trim().parse().map_err(|_| out.clone())?,
        body.to_owned(),
    ))
}

fn run(mut cmd: Command, stdin: Option<&[u8]>) -> Result<String, String> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("curl: {e}"))?;
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(data).map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Calls `probe` until it returns `Some`, at most [`PATIENCE`]; panics
/// with the last error otherwise.
pub(crate) fn eventually<T>(what: &str, mut probe: impl FnMut() -> Result<Option<T>, String>) -> T {
    let start = Instant::now();
    loop {
        let last = match probe() {
            Ok(Some(v)) => return v,
            Ok(None) => "not yet".to_owned(),
            Err(e) => e,
        };
        assert!(
            start.elapsed() < PATIENCE,
            "{what}: not seen within {PATIENCE:?}; last: {last}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A PromQL instant query through `/api/v1/query` (Prometheus or
/// VictoriaMetrics): each series' labels and value.
pub(crate) fn promql(base: &str, query: &str) -> Result<Vec<(serde_json::Value, f64)>, String> {
    let body = get(&format!("{base}/api/v1/query"), &[("query", query)])?;
    let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
    if v["status"] != "success" {
        return Err(body);
    }
    let result = v["data"]["result"].as_array().cloned().unwrap_or_default();
    Ok(result
        .into_iter()
        .map(|r| {
            let value = r["value"][1]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(f64::NAN);
            (r["metric"].clone(), value)
        })
        .collect())
}

/// An InfluxQL query against database `db`: the first statement's series.
pub(crate) fn influxql(
    base: &str,
    db: &str,
    query: &str,
) -> Result<Vec<serde_json::Value>, String> {
    let body = get(&format!("{base}/query"), &[("db", db), ("q", query)])?;
    let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
    if let Some(e) = v["results"][0]["error"].as_str() {
        return Err(e.to_owned());
    }
    Ok(v["results"][0]["series"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// `CREATE DATABASE` on an InfluxDB 1.x.
pub(crate) fn create_database(base: &str, db: &str) {
    let (status, body) = post(
        &format!("{base}/query?q=CREATE%20DATABASE%20%22{db}%22"),
        b"",
        &[],
    )
    .expect("influxdb answers");
    assert_eq!(status, 200, "{body}");
}
