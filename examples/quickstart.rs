//! A few monitored functions: sync and async, one failing, one slow.
//! Prints their JSON log lines, then the Prometheus exposition, and exits.
//!
//! ```text
//! cargo run --example quickstart
//! ```

use std::time::Duration;

use observe::{Observe, monitor_performance};

#[derive(Debug)]
struct Event {
    id: u64,
    entity_id: &'static str,
}

#[derive(Debug)]
enum IngestError {
    UnknownEntity(&'static str),
}

impl std::fmt::Display for IngestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownEntity(e) => write!(f, "unknown entity {e}"),
        }
    }
}

impl std::error::Error for IngestError {}

/// Validates an event: a sync call nested in the async one below.
#[monitor_performance("validate_event", level = "debug")]
fn validate(event: &Event) -> Result<(), IngestError> {
    if event.entity_id.starts_with("sensor.") {
        Ok(())
    } else {
        Err(IngestError::UnknownEntity(event.entity_id))
    }
}

/// Stores an event; slower than its 20 ms budget.
#[monitor_performance("store_event", slow = "20ms")]
async fn store(event: &Event) -> Result<u64, IngestError> {
    tokio::time::sleep(Duration::from_millis(30)).await;
    Ok(event.id)
}

/// The ingestion pipeline's `process_event` operation.
#[monitor_performance("process_event", context(event_id = event.id, entity_id = event.entity_id))]
async fn process_event(event: Event) -> Result<u64, IngestError> {
    validate(&event)?;
    tracing::info!(attempt = 1, "event validated");
    store(&event).await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let guard = Observe::builder("websocket-ingestion").install()?;

    let events = [
        Event {
            id: 1,
            entity_id: "sensor.kitchen",
        },
        Event {
            id: 2,
            entity_id: "light.hall",
        },
        Event {
            id: 3,
            entity_id: "sensor.garage",
        },
    ];
    for event in events {
        // Each root call starts its own correlation ID; nested calls share it.
        let _ = process_event(event).await;
    }

    // The lines go out before the exposition: a reader splits them there.
    if !guard.flush(Duration::from_secs(10)) {
        return Err("log lines still queued after 10 s".into());
    }
    print!("{}", guard.render().unwrap_or_default());
    Ok(())
}
