//! Per-function static metadata: one `Callsite` per annotated function.
//!
//! It holds the operation name, the slow threshold, three `tracing`
//! callsites (success level, WARN, ERROR) whose target is the annotated
//! function's module, so ordinary `tracing` filters (`my_crate::db=warn`)
//! apply to monitored calls too, and the metric handles registered once
//! against the global recorder.

use std::fmt;
use std::sync::{Arc, OnceLock};

use tracing_core::callsite::DefaultCallsite;
use tracing_core::{Level, Metadata};

use crate::base::Status;
use crate::base::names::is_valid_operation;
#[cfg(feature = "otlp")]
use crate::record::SiteNumber;
use crate::recorder::Site;
use crate::volume::OperationControls;

/// The fixed messages of one operation as JSON strings (quotes included),
/// built at compile time, indexed by [`Message`].
#[doc(hidden)]
pub type Messages = [&'static str; 4];

/// Which fixed message a line carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Message {
    Completed = 0,
    Panicked = 1,
    Cancelled = 2,
    Slow = 3,
}

impl Message {
    /// The fixed message of a call that ended as `status` (`slow`: over
    /// its threshold); `None` for an error, whose message is its own.
    pub(crate) fn for_outcome(status: Status, slow: bool) -> Option<Self> {
        match status {
            Status::Success if slow => Some(Self::Slow),
            Status::Success => Some(Self::Completed),
            Status::Panic => Some(Self::Panicked),
            Status::Cancelled => Some(Self::Cancelled),
            Status::Error => None,
        }
    }

    /// This message among an operation's `messages`.
    pub(crate) fn in_messages(self, messages: &Messages) -> FixedMessage {
        let quoted = messages[self as usize];
        FixedMessage {
            text: quoted
                .get(1..quoted.len().saturating_sub(1))
                .unwrap_or_default(),
            quoted,
        }
    }
}

/// One of an operation's fixed messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FixedMessage {
    /// The message.
    pub(crate) text: &'static str,
    /// The message as a JSON string: operation names need no escaping, so
    /// lines copy it as it is.
    pub(crate) quoted: &'static str,
}

/// Static description of one annotated function. Built by the
/// `monitor_performance` expansion; not constructed by hand.
#[doc(hidden)]
pub struct Callsite {
    messages: Messages,
    slow_nanos: u64,
    success: &'static DefaultCallsite,
    success_meta: &'static Metadata<'static>,
    warn: &'static DefaultCallsite,
    warn_meta: &'static Metadata<'static>,
    error: &'static DefaultCallsite,
    error_meta: &'static Metadata<'static>,
    /// The operation name and its metric handles.
    pub(crate) metrics: Site,
    /// The attribute's `sample`, as a sampling threshold + 1; 0 if unset.
    sample: u64,
    /// The number its calls' records carry.
    #[cfg(feature = "otlp")]
    pub(crate) number: SiteNumber,
    /// The operation's run-time log volume settings, found on first use.
    controls: OnceLock<Arc<OperationControls>>,
}

impl fmt::Debug for Callsite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callsite")
            .field("operation", &self.metrics.operation())
            .field("slow_nanos", &self.slow_nanos)
            .field("success_level", self.success_meta.level())
            .finish_non_exhaustive()
    }
}

/// Whether any subscriber enables any level at all: one load that answers
/// the common "nothing can log" case for every callsite (and says that no
/// correlation scope is worth opening).
#[inline]
pub(crate) fn logging_possible() -> bool {
    tracing_core::LevelFilter::current() != tracing_core::LevelFilter::OFF
}

/// The `tracing` callsite of one of the three levels a call may log at.
#[derive(Clone, Copy)]
pub(crate) struct LogSite {
    pub(crate) callsite: &'static DefaultCallsite,
    pub(crate) meta: &'static Metadata<'static>,
}

impl LogSite {
    /// Whether an event here would reach a subscriber, with the same checks
    /// (and order) as `tracing::event!`.
    #[inline]
    pub(crate) fn enabled(self) -> bool {
        if *self.meta.level() > tracing_core::LevelFilter::current() {
            return false;
        }
        let interest = self.callsite.interest();
        if interest.is_never() {
            return false;
        }
        interest.is_always() || tracing_core::dispatcher::get_default(|d| d.enabled(self.meta))
    }
}

impl Callsite {
    /// Used by the `__callsite!` expansion.
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    #[must_use]
    pub const fn new(
        operation: &'static str,
        messages: Messages,
        slow_nanos: u64,
        success: &'static DefaultCallsite,
        success_meta: &'static Metadata<'static>,
        warn: &'static DefaultCallsite,
        warn_meta: &'static Metadata<'static>,
        error: &'static DefaultCallsite,
        error_meta: &'static Metadata<'static>,
        sample: u64,
    ) -> Self {
        // Lines carry the name unescaped; in a `static` this is checked at
        // compile time.
        assert!(
            is_valid_operation(operation),
            "operation names are [a-zA-Z_][a-zA-Z0-9_.:-]*"
        );
        Self {
            messages,
            slow_nanos,
            success,
            success_meta,
            warn,
            warn_meta,
            error,
            error_meta,
            metrics: Site::new(operation),
            sample,
            #[cfg(feature = "otlp")]
            number: SiteNumber::new(),
            controls: OnceLock::new(),
        }
    }

    /// The attribute's sampling threshold + 1, or 0.
    pub(crate) fn sample(&self) -> u64 {
        self.sample
    }

    /// The operation's log volume settings.
    pub(crate) fn controls(&self) -> &OperationControls {
        self.controls
            .get_or_init(|| crate::volume::controls_for(self.operation()))
    }

    /// A fixed message: `{op} completed` and the like.
    pub(crate) fn message(&self, m: Message) -> FixedMessage {
        m.in_messages(&self.messages)
    }

    /// The fixed messages, as the site table keeps them.
    #[cfg(feature = "otlp")]
    pub(crate) fn messages(&'static self) -> &'static Messages {
        &self.messages
    }

    /// The operation name (a metric label and the log's `performance.operation`).
    pub(crate) fn operation(&self) -> &'static str {
        self.metrics.operation()
    }

    /// Threshold above which a successful call logs a WARN "slow" line;
    /// 0 means none.
    pub(crate) fn slow_nanos(&self) -> u64 {
        self.slow_nanos
    }

    #[inline]
    pub(crate) fn site(&self, level: Level) -> LogSite {
        if level == *self.success_meta.level() {
            LogSite {
                callsite: self.success,
                meta: self.success_meta,
            }
        } else if level == Level::ERROR {
            LogSite {
                callsite: self.error,
                meta: self.error_meta,
            }
        } else {
            LogSite {
                callsite: self.warn,
                meta: self.warn_meta,
            }
        }
    }

    #[inline]
    pub(crate) fn success_site(&self) -> LogSite {
        LogSite {
            callsite: self.success,
            meta: self.success_meta,
        }
    }

    /// Whether any line this call could emit would be written: the ERROR
    /// site is the least filtered of the three in every sane filter.
    #[inline]
    pub(crate) fn may_log(&self) -> bool {
        self.site(Level::ERROR).enabled() || self.success_site().enabled()
    }
}

/// Declares the static [`Callsite`] of one annotated function.
///
/// `__callsite!(NAME, "operation", INFO, slow_nanos, file, line, sample);`
/// (`sample`: a threshold from `sample_threshold`, or 0 for none).
#[doc(hidden)]
#[macro_export]
macro_rules! __callsite {
    ($name:ident, $op:literal, $level:ident, $slow:expr, $file:expr, $line:expr, $sample:expr) => {
        static $name: $crate::__private::Callsite = {
            use $crate::__private::tracing_core as __tc;
            static SUCCESS: __tc::callsite::DefaultCallsite =
                __tc::callsite::DefaultCallsite::new(&SUCCESS_META);
            static SUCCESS_META: __tc::Metadata<'static> = __tc::Metadata::new(
                $crate::__private::EVENT_NAME,
                ::core::module_path!(),
                __tc::Level::$level,
                ::core::option::Option::Some($file),
                ::core::option::Option::Some($line),
                ::core::option::Option::Some(::core::module_path!()),
                __tc::field::FieldSet::new(
                    $crate::__private::FIELDS,
                    __tc::callsite::Identifier(&SUCCESS),
                ),
                __tc::metadata::Kind::EVENT,
            );
            static WARN: __tc::callsite::DefaultCallsite =
                __tc::callsite::DefaultCallsite::new(&WARN_META);
            static WARN_META: __tc::Metadata<'static> = __tc::Metadata::new(
                $crate::__private::EVENT_NAME,
                ::core::module_path!(),
                __tc::Level::WARN,
                ::core::option::Option::Some($file),
                ::core::option::Option::Some($line),
                ::core::option::Option::Some(::core::module_path!()),
                __tc::field::FieldSet::new(
                    $crate::__private::FIELDS,
                    __tc::callsite::Identifier(&WARN),
                ),
                __tc::metadata::Kind::EVENT,
            );
            static ERROR: __tc::callsite::DefaultCallsite =
                __tc::callsite::DefaultCallsite::new(&ERROR_META);
            static ERROR_META: __tc::Metadata<'static> = __tc::Metadata::new(
                $crate::__private::EVENT_NAME,
                ::core::module_path!(),
                __tc::Level::ERROR,
                ::core::option::Option::Some($file),
                ::core::option::Option::Some($line),
                ::core::option::Option::Some(::core::module_path!()),
                __tc::field::FieldSet::new(
                    $crate::__private::FIELDS,
                    __tc::callsite::Identifier(&ERROR),
                ),
                __tc::metadata::Kind::EVENT,
            );
            $crate::__private::Callsite::new(
                $op,
                [
                    ::core::concat!("\"", $op, " completed\""),
                    ::core::concat!("\"", $op, " panicked\""),
                    ::core::concat!("\"", $op, " cancelled\""),
                    ::core::concat!("\"", $op, " slow\""),
                ],
                $slow,
                &SUCCESS,
                &SUCCESS_META,
                &WARN,
                &WARN_META,
                &ERROR,
                &ERROR_META,
                $sample,
            )
        };
    };
}
