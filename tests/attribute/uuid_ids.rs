//! The builder's UUID v7 option, which sets a process-wide format: no other
//! test in this binary reads the form of an ID.

use observe::correlation::{self, IdFormat};
use observe::{monitor_performance, testing};

#[monitor_performance]
fn handle() {}

#[test]
fn uuid_v7_ids_when_chosen() {
    correlation::set_id_format(IdFormat::UuidV7);
    let c = testing::capture(handle);
    let id = c.lines[0]["correlation_id"].as_str().expect("id");
    let uuid = uuid::Uuid::parse_str(id).expect("a UUID");
    assert_eq!(uuid.get_version_num(), 7, "{id}");
    correlation::set_id_format(IdFormat::Request);
    let c = testing::capture(handle);
    assert!(
        c.lines[0]["correlation_id"]
            .as_str()
            .expect("id")
            .starts_with("req_")
    );
}
