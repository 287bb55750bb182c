//! The OpenMetrics 1.0 text format, where it differs from Prometheus'
//! 0.0.4: a counter family is named without its `_total` suffix, no blank
//! lines, histogram buckets may carry exemplars, and the text ends with
//! `# EOF`.

/// The `Content-Type` of the Prometheus text format.
pub(crate) const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The exposition formats `/metrics` can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0.0.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` of a response in this format.
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Format::Text => TEXT_CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// The format a request's `Accept` header value asks for: OpenMetrics
    /// when it is listed and not refused with `q=0`.
    pub(crate) fn negotiate(accept: &str) -> Self {
        let wants = accept.split(',').any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f64>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            media.eq_ignore_ascii_case("application/openmetrics-text") && !refused
        });
        if wants {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

/// The name a family of `kind` is declared under in `# HELP` and `# TYPE`.
pub(crate) fn family_name<'a>(name: &'a str, kind: &str, format: Format) -> &'a str {
    match format {
        Format::OpenMetrics if kind == "counter" => name.strip_suffix("_total").unwrap_or(name),
        _ => name,
    }
}

/// The exporter's 0.0.4 text as OpenMetrics, without the closing `# EOF`.
///
/// Counter families are renamed without `_total`; a counter whose samples
/// lack the suffix is declared `unknown`, since OpenMetrics would reject
/// the whole scrape for it. Blank lines are dropped.
pub(crate) fn from_text(text: &str) -> String {
    let counters: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let declared = ["# HELP ", "# TYPE "]
            .iter()
            .find_map(|p| Some((*p, line.strip_prefix(p)?)));
        match declared {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                out.push_str(prefix);
                if counters.contains(&name) {
                    match name.strip_suffix("_total") {
                        Some(base) => {
                            out.push_str(base);
                            out.push(' ');
                            out.push_str(tail);
                        }
                        None if prefix == "# TYPE " => {
                            out.push_str(name);
                            out.push_str(" unknown");
                        }
                        None => {
                            out.push_str(name);
                            out.push(' ');
                            out.push_str(tail);
                        }
                    }
                } else {
                    out.push_str(rest);
                }
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_is_chosen_only_when_accepted() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                          version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(prometheus), Format::OpenMetrics);
        assert_eq!(Format::negotiate("text/plain"), Format::Text);
        assert_eq!(Format::negotiate("*/*"), Format::Text);
        assert_eq!(Format::negotiate(""), Format::Text);
        assert_eq!(
            Format::negotiate("application/openmetrics-text; q=0, text/plain"),
            Format::Text
        );
    }

    #[test]
    fn counters_are_declared_without_total_and_blank_lines_go() {
        let text = "# HELP a_total Things.\n# TYPE a_total counter\na_total{x=\"1\"} 3\n\n\
                    # TYPE odd counter\nodd 1\n\n# TYPE g gauge\ng 2\n";
        assert_eq!(
            from_text(text),
            "# HELP a Things.\n# TYPE a counter\na_total{x=\"1\"} 3\n\
             # TYPE odd unknown\nodd 1\n# TYPE g gauge\ng 2\n"
        );
    }
}
