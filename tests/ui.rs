//! Compile tests: every supported function and impl block shape expands and
//! compiles; every misuse is a compile error pointing at the offending
//! tokens.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
