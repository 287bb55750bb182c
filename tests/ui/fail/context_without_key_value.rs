use observe::monitor_performance;

#[monitor_performance(context(user_id))]
fn load_user(user_id: u64) -> u64 {
    user_id
}

fn main() {}
