//! What the parser accepts, what it records, and its syntax errors; the
//! errors are read through validation, which reports them.

use quote::{ToTokens as _, quote};

use super::*;
use crate::test_util::{errors, parse, single_error};

fn operation(args: &Args) -> Option<String> {
    args.operation().map(LitStr::value)
}

fn keys(args: &Args) -> Vec<String> {
    args.context().map(|f| f.key.clone()).collect()
}

// ---- what the parser records -------------------------------------------

#[test]
fn arguments_are_kept_in_source_order_without_judging_them() {
    // Only the unknown option is a parse error; the bad level and the
    // late name are read as written and left to validation.
    let args: Args =
        syn::parse2(quote!(level = "loud", foo = 1, "late")).expect("parse never fails");
    match args.list.as_slice() {
        [
            Arg::Option(Opt {
                key: Key::Level,
                value: Ok(Value::Level(LevelArg { level: None, lit })),
                ..
            }),
            Arg::Malformed(error),
            Arg::Name(name),
        ] => {
            assert_eq!(lit.value(), "loud");
            assert!(error.to_string().starts_with("unknown option `foo`"));
            assert_eq!(name.value(), "late");
        }
        other => panic!("unexpected model: {other:?}"),
    }
}

#[test]
fn missing_comma_is_recorded_after_its_argument() {
    let args: Args = syn::parse2(quote!("op" level = "info")).expect("parse never fails");
    assert!(matches!(
        args.list.as_slice(),
        [Arg::Name(_), Arg::Malformed(_)]
    ));
}

// ---- accepted forms ----------------------------------------------------

#[test]
fn empty_input_gives_all_defaults() {
    let args = parse(quote!());
    assert!(args.operation().is_none());
    assert!(args.level().is_none());
    assert!(args.context().next().is_none());
    assert!(args.slow().is_none());
    assert!(args.krate().is_none());
}

#[test]
fn name_only() {
    let args = parse(quote!("db.query"));
    assert_eq!(operation(&args).as_deref(), Some("db.query"));
    assert!(args.level().is_none() && args.slow().is_none() && args.krate().is_none());
    assert!(args.context().next().is_none());
}

#[test]
fn name_with_trailing_comma() {
    let args = parse(quote!("op",));
    assert_eq!(operation(&args).as_deref(), Some("op"));
}

#[test]
fn level_each_value_case_insensitive() {
    let cases = [
        ("trace", Level::Trace),
        ("debug", Level::Debug),
        ("info", Level::Info),
        ("warn", Level::Warn),
        ("error", Level::Error),
        ("DEBUG", Level::Debug),
        ("Warn", Level::Warn),
        ("eRRoR", Level::Error),
    ];
    for (text, expected) in cases {
        let args = parse(quote!(level = #text));
        assert_eq!(args.level(), Some(expected), "level = {text:?}");
    }
}

#[test]
fn level_ident_strings() {
    assert_eq!(Level::Trace.as_ident_str(), "TRACE");
    assert_eq!(Level::Debug.as_ident_str(), "DEBUG");
    assert_eq!(Level::Info.as_ident_str(), "INFO");
    assert_eq!(Level::Warn.as_ident_str(), "WARN");
    assert_eq!(Level::Error.as_ident_str(), "ERROR");
}

#[test]
fn slow_option() {
    let args = parse(quote!(slow = "250ms"));
    let (nanos, lit) = args.slow().expect("slow");
    assert_eq!(nanos, 250_000_000);
    assert_eq!(lit.value(), "250ms");
}

#[test]
fn slow_with_unicode_micro() {
    let nanos = |tokens| parse(tokens).slow().map(|(nanos, _)| nanos);
    assert_eq!(nanos(quote!(slow = "10µs")), Some(10_000));
    // Greek small letter mu, which looks the same.
    assert_eq!(nanos(quote!(slow = "10μs")), Some(10_000));
}

#[test]
fn crate_option_path_forms() {
    for (tokens, expected) in [
        (quote!(crate = ::my_observe), ":: my_observe"),
        (quote!(crate = my_observe), "my_observe"),
        (
            quote!(crate = crate::reexports::observe),
            "crate :: reexports :: observe",
        ),
        (quote!(crate = "::my_observe"), ":: my_observe"),
    ] {
        let args = parse(tokens);
        let path = args.krate().expect("crate");
        assert_eq!(path.to_token_stream().to_string(), expected);
    }
}

#[test]
fn all_options_with_name() {
    let args = parse(quote!(
        "db.query",
        level = "debug",
        context(user_id = user.id, req = %req),
        slow = "1.5s",
        crate = ::my_observe,
    ));
    assert_eq!(operation(&args).as_deref(), Some("db.query"));
    assert_eq!(args.level(), Some(Level::Debug));
    assert_eq!(keys(&args), ["user_id", "req"]);
    assert_eq!(args.slow().map(|(n, _)| n), Some(1_500_000_000));
    assert!(args.krate().is_some());
}

#[test]
fn all_options_any_order_without_name() {
    let args = parse(quote!(
        crate = ::my_observe,
        slow = "2m",
        context(k = v),
        level = "warn"
    ));
    assert!(args.operation().is_none());
    assert_eq!(args.level(), Some(Level::Warn));
    assert_eq!(keys(&args), ["k"]);
    assert_eq!(args.slow().map(|(n, _)| n), Some(120_000_000_000));
    assert!(args.krate().is_some());
}

#[test]
fn options_in_reverse_order_after_name() {
    let args = parse(quote!("op", slow = "5us", level = "trace"));
    assert_eq!(operation(&args).as_deref(), Some("op"));
    assert_eq!(args.level(), Some(Level::Trace));
    assert_eq!(args.slow().map(|(n, _)| n), Some(5_000));
}

#[test]
fn parse_str_round_trip() {
    // Same path the macro takes when the attribute is written by hand.
    let args: Args = syn::parse_str(r#""op", level = "info", context(a.b = %c)"#).expect("parse");
    assert_eq!(args.level(), Some(Level::Info));
    assert_eq!(keys(&args), ["a.b"]);
}

// ---- syntax errors -----------------------------------------------------

#[test]
fn name_non_string_literal() {
    let expected = "expected an operation name, e.g. #[monitor_performance(\"db.query\")]";
    assert_eq!(single_error(quote!(42)), expected);
    assert_eq!(single_error(quote!(true)), expected);
    assert_eq!(single_error(quote!(4.2, level = "info")), expected);
}

#[test]
fn name_as_ident_or_path() {
    let expected = "expected an operation name, e.g. #[monitor_performance(\"db.query\")]";
    assert_eq!(single_error(quote!(db_query)), expected);
    assert_eq!(single_error(quote!(db::query, level = "info")), expected);
}

#[test]
fn unknown_option() {
    assert_eq!(
        single_error(quote!(foo = 1)),
        "unknown option `foo`; expected one of: level, context, slow, crate, sample, objective, prefix, skip"
    );
    assert_eq!(
        single_error(quote!("op", bar(1))),
        "unknown option `bar`; expected one of: level, context, slow, crate, sample, objective, prefix, skip"
    );
    // A bare identifier after the name is an option slot, not a name.
    assert_eq!(
        single_error(quote!("op", baz)),
        "unknown option `baz`; expected one of: level, context, slow, crate, sample, objective, prefix, skip"
    );
    assert_eq!(
        single_error(quote!(type = 1)),
        "unknown option `type`; expected one of: level, context, slow, crate, sample, objective, prefix, skip"
    );
}

#[test]
fn unexpected_token_uses_lookahead_message() {
    // syn reads `-1` as a (negative) literal, i.e. a misspelled name.
    assert!(single_error(quote!(-1)).starts_with("expected an operation name"));
    assert_eq!(
        single_error(quote!(= 1)),
        "expected one of: string literal, `level`, `context`, `slow`, `crate`, `sample`, `objective`, `prefix`, `skip`"
    );
    assert_eq!(
        single_error(quote!("op", -1)),
        "expected one of: `level`, `context`, `slow`, `crate`, `sample`, `objective`, `prefix`, `skip`"
    );
}

#[test]
fn missing_comma_between_arguments() {
    assert_eq!(
        single_error(quote!("op" level = "info")),
        "expected `,` between arguments"
    );
    assert_eq!(
        single_error(quote!(level = "info" "x")),
        "expected `,` between arguments"
    );
}

#[test]
fn no_comma_error_after_a_broken_argument() {
    // The parser stopped inside the value, not where a comma belongs.
    assert_eq!(
        single_error(quote!(level = debug "x")),
        "expected a string literal for `level`, e.g. level = \"debug\""
    );
}

#[test]
fn stray_commas() {
    let message = single_error(quote!("op",, level = "info"));
    assert_eq!(
        message,
        "expected one of: `level`, `context`, `slow`, `crate`, `sample`, `objective`, `prefix`, `skip`"
    );
}

#[test]
fn level_syntax_errors() {
    assert_eq!(
        single_error(quote!(level = debug)),
        "expected a string literal for `level`, e.g. level = \"debug\""
    );
    assert_eq!(
        single_error(quote!(level)),
        "expected `=` after `level`, e.g. level = \"debug\""
    );
    assert_eq!(
        single_error(quote!(level "debug")),
        "expected `=` after `level`, e.g. level = \"debug\""
    );
    assert_eq!(
        single_error(quote!(level =)),
        "expected a string literal for `level`, e.g. level = \"debug\""
    );
}

#[test]
fn slow_syntax_errors() {
    assert_eq!(
        single_error(quote!(slow = 250ms)),
        "expected a quoted duration for `slow`, e.g. slow = \"250ms\""
    );
    assert_eq!(
        single_error(quote!(slow = 250)),
        "expected a quoted duration for `slow`, e.g. slow = \"250ms\""
    );
    assert_eq!(
        single_error(quote!(slow("1s"))),
        "expected `=` after `slow`, e.g. slow = \"250ms\""
    );
}

#[test]
fn crate_syntax_errors() {
    assert_eq!(
        single_error(quote!(crate = 1)),
        "expected a path for `crate`, e.g. crate = ::observe"
    );
    assert_eq!(
        single_error(quote!(crate)),
        "expected `=` after `crate`, e.g. crate = ::observe"
    );
}

#[test]
fn error_recovery_skips_garbage_to_next_comma() {
    // The garbage after `foo` must not produce extra errors, and the
    // option after it must still be checked.
    let all = errors(quote!(foo = 1 2 3 (x, y), level = "nope"));
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all[0].starts_with("unknown option `foo`"));
    assert!(all[1].starts_with("invalid level `nope`"));
}
