#![allow(clippy::unwrap_used)]

use super::*;

fn data(value: f64) -> TemplateData {
    let mut labels = BTreeMap::new();
    labels.insert("instance".to_string(), "db1:9187".to_string());
    labels.insert("job".to_string(), "postgres".to_string());
    let mut external_labels = BTreeMap::new();
    external_labels.insert("cluster".to_string(), "eu".to_string());
    TemplateData {
        labels,
        value,
        external_labels,
        external_url: "http://didban:9480".into(),
    }
}

fn expand(src: &str, value: f64) -> String {
    Template::parse(src).unwrap().expand(&data(value)).unwrap()
}

#[test]
fn variables_fields_and_missing_keys() {
    assert_eq!(expand("{{ $labels.instance }} is down", 1.0), "db1:9187 is down");
    assert_eq!(
        expand("{{ .Labels.job }}/{{ $externalLabels.cluster }}", 1.0),
        "postgres/eu"
    );
    assert_eq!(expand("{{ $labels.nope }}", 1.0), "<no value>");
    assert_eq!(expand("{{ $externalURL }}", 1.0), "http://didban:9480");
    assert_eq!(expand("no template", 1.0), "no template");
}

#[test]
fn value_prints_like_go() {
    assert_eq!(expand("{{ $value }}", 0.5), "0.5");
    assert_eq!(expand("{{ $value }}", 100.0), "100");
    assert_eq!(expand("{{ $value }}", 1_000_000.0), "1e+06");
    assert_eq!(expand("{{ $value }}", 123456.0), "123456");
    assert_eq!(expand("{{ $value }}", 0.00001), "1e-05");
    assert_eq!(expand("{{ .Value }}", f64::INFINITY), "+Inf");
    assert_eq!(expand("{{ $value }}", f64::NAN), "NaN");
}

#[test]
fn humanize_family() {
    assert_eq!(expand("{{ $value | humanize }}", 1234567.0), "1.235M");
    assert_eq!(expand("{{ humanize $value }}", 0.0012), "1.2m");
    assert_eq!(expand("{{ humanize $value }}", 1000.0), "1k");
    assert_eq!(expand("{{ humanize $value }}", 0.0), "0");
    assert_eq!(expand("{{ humanize1024 $value }}", 1048576.0), "1Mi");
    assert_eq!(expand("{{ humanize1024 $value }}", 1.0), "1");
    assert_eq!(expand("{{ humanizePercentage $value }}", 0.1234), "12.34%");
    assert_eq!(expand("{{ humanizePercentage $value }}", 0.5), "50%");
    assert_eq!(expand("{{ humanizeDuration $value }}", 90061.0), "1d 1h 1m 1s");
    assert_eq!(expand("{{ humanizeDuration $value }}", 3725.0), "1h 2m 5s");
    assert_eq!(expand("{{ humanizeDuration $value }}", 1.5), "1.5s");
    assert_eq!(expand("{{ humanizeDuration $value }}", 0.012), "12ms");
    assert_eq!(expand("{{ humanizeDuration $value }}", 0.0), "0s");
    assert_eq!(expand("{{ humanize \"12345\" }}", 0.0), "12.35k");
    assert_eq!(
        expand("{{ humanizeTimestamp $value }}", 1435065584.128),
        "2015-06-23 13:19:44.128 +0000 UTC"
    );
}

#[test]
fn printf_and_string_functions() {
    assert_eq!(expand(r#"{{ printf "%.2f" $value }}"#, 1.23456), "1.23");
    assert_eq!(
        expand(r#"{{ printf "%s has %.1f%%" $labels.job $value }}"#, 99.44),
        "postgres has 99.4%"
    );
    assert_eq!(expand(r#"{{ printf "%d" 42 }}"#, 0.0), "42");
    assert_eq!(expand(r#"{{ printf "%d" $value }}"#, 1.5), "%!d(float64=1.5)");
    assert_eq!(
        expand(r#"{{ printf "%5.1f|%-4s|" $value "ab" }}"#, 2.0),
        "  2.0|ab  |"
    );
    assert_eq!(expand(r#"{{ printf "%e" $value }}"#, 1234.5), "1.234500e+03");
    assert_eq!(expand(r#"{{ printf "%g" $value }}"#, 1e21), "1e+21");
    assert_eq!(expand(r#"{{ printf "%q" "a" }}"#, 0.0), "\"a\"");
    assert_eq!(expand(r#"{{ printf "%s" }}"#, 0.0), "%!s(MISSING)");
    assert_eq!(expand("{{ $labels.job | toUpper }}", 0.0), "POSTGRES");
    assert_eq!(expand("{{ toLower \"ABC\" }}", 0.0), "abc");
    assert_eq!(expand("{{ title \"hello world\" }}", 0.0), "Hello World");
    assert_eq!(expand("{{ $labels.instance | stripPort }}", 0.0), "db1");
    assert_eq!(
        expand(r#"{{ reReplaceAll "(.*):.*" "$1" $labels.instance }}"#, 0.0),
        "db1"
    );
    assert_eq!(expand("{{ $labels.job | printf \"%s!\" }}", 0.0), "postgres!");
}

#[test]
fn control_flow_trimming_and_variables() {
    assert_eq!(
        expand("{{ if gt $value 80.0 }}high{{ else }}low{{ end }}", 90.0),
        "high"
    );
    assert_eq!(
        expand(
            "{{ if gt $value 80.0 }}high{{ else if gt $value 50.0 }}mid{{ else }}low{{ end }}",
            60.0
        ),
        "mid"
    );
    assert_eq!(
        expand("{{ if eq $labels.job \"postgres\" }}pg{{ end }}", 0.0),
        "pg"
    );
    assert_eq!(expand("a  {{- \"b\" -}}  c", 0.0), "abc");
    assert_eq!(expand("{{/* comment */}}x", 0.0), "x");
    assert_eq!(expand("{{ $x := humanize $value }}[{{ $x }}]", 2000.0), "[2k]");
    assert_eq!(
        expand("{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}", 0.0),
        "instance=db1:9187;job=postgres;"
    );
    assert_eq!(
        expand("{{ (printf \"%.0f\" $value) | printf \"<%s>\" }}", 3.0),
        "<3>"
    );
    assert_eq!(
        expand("{{ if and (gt $value 1.0) (lt $value 5.0) }}in{{ end }}", 3.0),
        "in"
    );
}

#[test]
fn errors_name_the_problem() {
    let e = Template::parse("{{ $labels.x ").unwrap_err();
    assert!(e.message.contains("unclosed action"), "{e}");
    let e = Template::parse("{{ nosuchfunc 1 }}").unwrap_err();
    assert!(e.message.contains("\"nosuchfunc\" not defined"), "{e}");
    let e = Template::parse("{{ query \"up\" }}").unwrap_err();
    assert!(e.message.contains("\"query\" not defined"), "{e}");
    let e = Template::parse("line1\n{{ if true }}x").unwrap_err();
    assert_eq!(e.line, Some(2), "{e}");
    let e = Template::parse("{{ end }}").unwrap_err();
    assert!(e.message.contains("unexpected"), "{e}");
    let e = Template::parse("{{ humanize \"abc\" }}")
        .unwrap()
        .expand(&data(0.0))
        .unwrap_err();
    assert!(e.message.contains("invalid syntax"), "{e}");
    let e = Template::parse("{{ $nope }}")
        .unwrap()
        .expand(&data(0.0))
        .unwrap_err();
    assert!(e.message.contains("undefined variable: $nope"), "{e}");
}

#[test]
fn printf_refuses_absurd_width_and_precision_as_go_does() {
    // Found by the `template` fuzz target: the width overflowed (a panic with overflow checks,
    // a wrapped or gigabyte-sized padding without). Go gives up on the rest of the format
    // and reports the unused arguments, as here.
    assert_eq!(
        expand(r#"{{ printf "a%99999999999999999999999d" 1 }}"#, 0.0),
        "a%!(NOVERB)%!(EXTRA int=1)"
    );
    assert_eq!(
        expand(r#"{{ printf "%.99999999999999999999f|" 2.5 }}"#, 0.0),
        "%!(NOVERB)%!(EXTRA float64=2.5)"
    );
    assert_eq!(expand(r#"{{ printf "%3d|%.2f" 7 2.5 }}"#, 0.0), "  7|2.50");
}
