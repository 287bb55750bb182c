//! An install refused for a recorder observe could not see beforehand
//! leaves nothing behind, and a component's shutdown line is delivered.
//! Installs globally, so this binary holds a single test.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use observe::sink::FileSink;
use observe::{Background, InstallError, Observe};

/// A recorder with no state of its own: it looks like no recorder at all
/// to a check of the recorder's size.
struct Stateless;

impl Recorder for Stateless {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
        Counter::noop()
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

/// Counts its stops, and logs one line while stopping.
#[derive(Debug)]
struct Component(Arc<AtomicUsize>);

impl Background for Component {
    fn stop(self: Box<Self>, _timeout: Duration) {
        self.0.fetch_add(1, Ordering::SeqCst);
        tracing::warn!("component stopping");
    }
}

fn component(
    stops: &Arc<AtomicUsize>,
) -> impl FnOnce(&observe::InstallContext<'_>) -> Result<Box<dyn Background>, InstallError>
+ Send
+ 'static {
    let stops = Arc::clone(stops);
    move |_| Ok(Box::new(Component(stops)) as Box<dyn Background>)
}

#[test]
fn a_refused_recorder_installs_nothing_and_a_stopping_component_is_flushed() {
    metrics::set_global_recorder(Stateless).expect("first recorder");
    let stops = Arc::new(AtomicUsize::new(0));

    let refused = Observe::builder("svc")
        .on_install(component(&stops))
        .install();
    assert!(
        matches!(refused, Err(InstallError::RecorderAlreadySet)),
        "{:?}",
        refused.err()
    );
    assert_eq!(
        stops.load(Ordering::SeqCst),
        1,
        "the started component is stopped"
    );
    assert!(
        !tracing::dispatcher::has_been_set(),
        "a refused install leaves no subscriber behind"
    );

    // Keeping the other recorder, as the error message advises, works.
    let dir = std::env::temp_dir().join(format!("observe-install-refused-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("svc.log");
    let guard = Observe::builder("svc")
        .prometheus(false)
        .sink(FileSink::new(&path).expect("file sink"))
        .on_install(component(&stops))
        .install()
        .expect("install without Prometheus");
    tracing::info!("running");
    drop(guard);
    assert_eq!(stops.load(Ordering::SeqCst), 2);

    // Dropping the guard returned only after the line the component logged
    // while stopping reached the file.
    let text = std::fs::read_to_string(&path).expect("log file");
    let messages: Vec<String> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            v["message"].as_str().expect("message").to_owned()
        })
        .collect();
    assert_eq!(messages, ["running", "component stopping"]);
    let _ = std::fs::remove_dir_all(&dir);
}
