// The call guard is plumbing of the attribute's expansion: it has no public
// path (the expansion reaches it through the hidden `__private` module).
use observe::operation::Guard;

fn main() {}
