//! The semantic checks, and that parser and validation errors come out
//! together in source order.

use quote::quote;

use super::*;
use crate::context::CONTEXT_FORM as FORM;
use crate::test_util::{errors, item_errors, parse, single_error};

// ---- operation name ----------------------------------------------------

/// One table for the name rule of both crates: the macro's, which
/// rejects names at compile time, and the runtime's, which every
/// callsite asserts in a `const` context.
#[test]
fn operation_rule_agrees_with_the_runtime() {
    let table = [
        ("a", true),
        ("Z", true),
        ("_", true),
        ("_x", true),
        ("__", true),
        ("x1", true),
        ("db.query", true),
        ("svc::handler", true),
        ("get-user_2", true),
        ("A9._:-", true),
        ("a.", true),
        ("a:", true),
        ("a-", true),
        ("", false),
        ("1abc", false),
        ("9", false),
        (".a", false),
        (":a", false),
        ("-a", false),
        ("a b", false),
        (" a", false),
        ("a ", false),
        ("a\tb", false),
        ("a/b", false),
        ("a@b", false),
        ("a\0", false),
        ("é", false),
        ("café", false),
        ("a\u{b5}", false),
        ("\u{3bc}", false),
        ("a\u{200b}", false),
    ];
    for (name, expected) in table {
        assert_eq!(is_valid_operation(name), expected, "macro rule on {name:?}");
        assert_eq!(
            observe_runtime::__private::is_valid_operation(name),
            expected,
            "runtime rule on {name:?}"
        );
    }
}

#[test]
fn name_allowed_characters() {
    for name in [
        "_x",
        "a",
        "db.query",
        "svc::handler",
        "get-user_2",
        "A9._:-",
    ] {
        let args = parse(quote!(#name));
        assert_eq!(args.operation().map(LitStr::value).as_deref(), Some(name));
    }
}

#[test]
fn name_empty() {
    assert_eq!(
        single_error(quote!("")),
        "operation name is empty; omit it or give a name, \
         e.g. #[monitor_performance(\"db.query\")]"
    );
}

#[test]
fn name_invalid_characters() {
    assert_eq!(
        single_error(quote!("a b")),
        "invalid operation name `a b`: use letters, digits, `_`, `.`, `:` or `-`, \
         starting with a letter or `_`"
    );
    for bad in ["1abc", ".a", "-a", "a/b", "é", "a\u{b5}", "a b"] {
        let message = single_error(quote!(#bad));
        assert!(
            message.starts_with(&format!("invalid operation name `{bad}`")),
            "{bad:?}: {message}"
        );
    }
}

#[test]
fn name_not_first() {
    let message = single_error(quote!(level = "info", "op"));
    assert!(
        message.starts_with("the operation name must be the first argument"),
        "{message}"
    );
    let message = single_error(quote!("op", "again"));
    assert!(message.starts_with("the operation name must be the first argument"));
}

#[test]
fn duplicate_options() {
    assert_eq!(
        single_error(quote!(level = "info", level = "debug")),
        "duplicate option `level`"
    );
    assert_eq!(
        single_error(quote!(slow = "1s", slow = "2s")),
        "duplicate option `slow`"
    );
    assert_eq!(
        single_error(quote!(context(a = 1), context(b = 2))),
        "duplicate option `context`"
    );
    assert_eq!(
        single_error(quote!(crate = a, crate = b)),
        "duplicate option `crate`"
    );
}

#[test]
fn duplicate_after_invalid_first_is_still_duplicate() {
    let all = errors(quote!(level = "loud", level = "debug"));
    assert_eq!(
        all,
        [
            "invalid level `loud`; expected one of: trace, debug, info, warn, error",
            "duplicate option `level`",
        ]
    );
}

#[test]
fn duplicate_with_invalid_value_reports_both() {
    let all = errors(quote!(slow = "1s", slow = "fast"));
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[0], "duplicate option `slow`");
    assert!(all[1].starts_with("invalid duration `fast`"), "{all:?}");
}

#[test]
fn context_duplicate_keys() {
    assert_eq!(
        single_error(quote!(context(a = 1, b = 2, a = 3))),
        "duplicate context key `a`"
    );
    assert_eq!(
        single_error(quote!(context(a.b = 1, a.r#b = 2))),
        "duplicate context key `a.b`"
    );
    assert_eq!(
        single_error(quote!(context(r#type = 1, type = 2))),
        "duplicate context key `type`"
    );
}

#[test]
fn context_reports_every_bad_entry() {
    let all = errors(quote!(context(user_id, a = 1, 1 + 2, a = 2, b = )));
    assert_eq!(
        all,
        [
            FORM.to_owned(),
            FORM.to_owned(),
            "duplicate context key `a`".to_owned(),
            format!("missing value for context key `b`; {FORM}"),
        ]
    );
}

#[test]
fn three_mistakes_three_errors() {
    let all = errors(quote!(level = "loud", foo = 1, slow = "25 parsecs"));
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(
        all[0],
        "invalid level `loud`; expected one of: trace, debug, info, warn, error"
    );
    assert_eq!(
        all[1],
        "unknown option `foo`; expected one of: level, context, slow, crate, sample, objective, prefix, skip"
    );
    assert!(
        all[2].starts_with("invalid duration `25 parsecs`"),
        "{all:?}"
    );
}

#[test]
fn every_kind_of_mistake_at_once() {
    let all = errors(quote!(
        42,
        "late",
        level = "loud",
        context(user_id),
        slow = "0s",
        crate = 1,
        level = "info",
        bogus
    ));
    assert_eq!(
        all,
        [
            "expected an operation name, e.g. #[monitor_performance(\"db.query\")]",
            "the operation name must be the first argument, \
             e.g. #[monitor_performance(\"db.query\", level = \"debug\")]",
            "invalid level `loud`; expected one of: trace, debug, info, warn, error",
            FORM,
            "invalid duration `0s`: must be greater than zero",
            "expected a path for `crate`, e.g. crate = ::observe",
            "duplicate option `level`",
            "unknown option `bogus`; expected one of: level, context, slow, crate, sample, objective, prefix, skip",
        ]
    );
}

#[test]
fn valid_options_are_not_reported_next_to_errors() {
    let all = errors(quote!("op", level = "info", foo = 1, slow = "1s"));
    assert_eq!(all.len(), 1, "{all:?}");
}

// ---- option values -----------------------------------------------------

#[test]
fn level_value() {
    assert_eq!(
        single_error(quote!(level = "verbose")),
        "invalid level `verbose`; expected one of: trace, debug, info, warn, error"
    );
}

#[test]
fn slow_value() {
    assert_eq!(
        single_error(quote!(slow = "25 parsecs")),
        "invalid duration `25 parsecs`: expected a number followed by ns, us, ms, s or m, \
         e.g. slow = \"250ms\""
    );
    assert_eq!(
        single_error(quote!(slow = "0ms")),
        "invalid duration `0ms`: must be greater than zero"
    );
    assert_eq!(
        single_error(quote!(slow = "18446744073709551616ns")),
        "invalid duration `18446744073709551616ns`: \
         too large: must fit in u64 nanoseconds (about 584 years)"
    );
    assert_eq!(
        single_error(quote!(slow = "0.5ns")),
        "invalid duration `0.5ns`: not a whole number of nanoseconds"
    );
}

#[test]
fn crate_value() {
    assert_eq!(
        single_error(quote!(crate = "not a path")),
        "invalid crate path `not a path`, e.g. crate = ::observe"
    );
}

#[test]
fn context_reserved_key() {
    let reserved = "context key `error_type` is reserved: a failed call's line \
                    carries its error's type under it; pick another key";
    assert_eq!(single_error(quote!(context(error_type = e))), reserved);
    // Each use is reported, none of them as a duplicate.
    assert_eq!(
        errors(quote!(context(error_type = 1, a = 2, error_type = 3))),
        [reserved, reserved]
    );
    // Only the exact key is reserved.
    parse(quote!(context(error.type = 1, error_types = 2)));
}

// ---- the annotated item ------------------------------------------------

fn on_item(item: proc_macro2::TokenStream) -> Vec<String> {
    item_errors(quote!(), Some(item))
}

#[test]
fn function_without_body() {
    let expected = "#[monitor_performance] needs a function body; put it on the \
                    implementation, or on a trait method with a default body";
    assert_eq!(
        on_item(quote!(
            fn f(&self);
        )),
        [expected]
    );
    assert_eq!(
        on_item(quote!(
            async fn f(&self) -> u32;
        )),
        [expected]
    );
    assert_eq!(
        on_item(quote!(
            #[doc = "x"]
            unsafe fn f();
        )),
        [expected]
    );
}

#[test]
fn not_a_function() {
    let expected =
        "#[monitor_performance] can only be applied to functions, methods and impl blocks";
    for item in [
        quote!(
            struct S;
        ),
        quote!(
            trait T {}
        ),
        quote!(
            const X: fn() = f;
        ),
        quote!(
            type F = fn();
        ),
        quote!(
            static S: u8 = 0;
        ),
        quote!(
            mod m {}
        ),
    ] {
        assert_eq!(on_item(item), [expected]);
    }
}

#[test]
fn const_fn_and_track_caller() {
    let const_fn = "#[monitor_performance] cannot be applied to a `const fn`: timing and \
                    logging cannot run at compile time";
    let track_caller = "#[monitor_performance] cannot be combined with #[track_caller]: \
                        the body runs inside a closure, where `Location::caller()` would \
                        report the function itself";
    assert_eq!(
        on_item(quote!(
            const fn f() {}
        )),
        [const_fn]
    );
    assert_eq!(
        on_item(quote!(
            #[track_caller]
            fn f() {}
        )),
        [track_caller]
    );
    assert_eq!(
        on_item(quote!(
            #[track_caller]
            const fn f() {}
        )),
        [const_fn, track_caller]
    );
}

#[test]
fn function_name_as_operation() {
    let expected = "the function name `café` is not a valid operation name (letters, \
                    digits, `_`, `.`, `:` or `-`, ASCII only); name the operation \
                    explicitly, e.g. #[monitor_performance(\"my_operation\")]";
    let item = quote!(
        fn café() {}
    );
    assert_eq!(on_item(item.clone()), [expected]);
    // An explicit name is the way out.
    assert!(check(quote!("cafe"), item).is_ok());
    // `r#` is not part of the name.
    assert!(
        check(
            quote!(),
            quote!(
                fn r#match() {}
            )
        )
        .is_ok()
    );
}

#[test]
fn attribute_and_item_errors_together() {
    assert_eq!(
        item_errors(
            quote!(level = "loud"),
            Some(quote!(
                const fn f() {}
            ))
        ),
        [
            "invalid level `loud`; expected one of: trace, debug, info, warn, error",
            "#[monitor_performance] cannot be applied to a `const fn`: timing and logging \
             cannot run at compile time",
        ]
    );
}

#[test]
fn item_that_is_not_rust_is_left_to_rustc() {
    assert!(check(quote!(), quote!(fn f() { let })).is_ok());
}

fn check(args: proc_macro2::TokenStream, item: proc_macro2::TokenStream) -> syn::Result<()> {
    let args: Args = syn::parse2(args)?;
    validate(&args, Item::parse(item).as_ref())
}
