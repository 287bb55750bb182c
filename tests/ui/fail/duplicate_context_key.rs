use observe::monitor_performance;

#[monitor_performance(context(user = user_id, tenant = tenant_id, user = tenant_id))]
fn load_user(user_id: u64, tenant_id: u64) -> u64 {
    user_id + tenant_id
}

fn main() {}
