use observe::monitor_performance;

trait Repository {
    #[monitor_performance]
    fn f(&self);
}

fn main() {}
