#![allow(clippy::unwrap_used)]

use super::store::{load_from, save_in, shipped_sources, Source, StoreError};
use super::vars::{format_duration, legend, select, LabelValuesQuery, Scope, VarValue};
use super::*;

const MINIMAL: &str = "
id: demo
title: Demo
panels:
  - title: Up
    type: timeseries
    queries:
      - expr: up
        legend: '{{instance}}'
";

#[test]
fn minimal_yaml_parses_with_defaults() {
    let d = Dashboard::from_yaml("demo.yaml", MINIMAL).unwrap();
    assert_eq!(d.id, "demo");
    assert_eq!(d.time.from, "now-1h");
    assert_eq!(d.panels[0].w, 12);
    assert_eq!(d.panels[0].h, 8);
    assert_eq!(d.panels[0].queries[0].legend, "{{instance}}");
    let again = Dashboard::from_yaml("x", &d.to_yaml()).unwrap();
    assert_eq!(again, d);
}

#[test]
fn yaml_errors_name_file_panel_and_field() {
    let unknown = MINIMAL.replace("    type: timeseries", "    type: timeseries\n    colour: red");
    let e = Dashboard::from_yaml("demo.yaml", &unknown)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("demo.yaml: "), "{e}");
    assert!(e.contains("panels[0]") && e.contains("colour"), "{e}");

    let bad_type = MINIMAL.replace("type: timeseries", "type: pie");
    let e = Dashboard::from_yaml("demo.yaml", &bad_type)
        .unwrap_err()
        .to_string();
    assert!(e.contains("pie"), "{e}");

    let too_wide = MINIMAL.replace(
        "        legend: '{{instance}}'",
        "        legend: x\n    x: 20\n    w: 8",
    );
    let e = Dashboard::from_yaml("demo.yaml", &too_wide)
        .unwrap_err()
        .to_string();
    assert!(e.contains("panels[0] (\"Up\")") && e.contains("x:"), "{e}");

    let bad_id = MINIMAL.replace("id: demo", "id: Demo Board");
    let e = Dashboard::from_yaml("demo.yaml", &bad_id)
        .unwrap_err()
        .to_string();
    assert!(e.contains("id:"), "{e}");

    let bad_color = MINIMAL.replace(
        "        legend: '{{instance}}'",
        "        legend: x\n    thresholds:\n      - color: 'red\" onload=\"x'",
    );
    let e = Dashboard::from_yaml("demo.yaml", &bad_color)
        .unwrap_err()
        .to_string();
    assert!(e.contains("thresholds[0].color"), "{e}");

    let bad_var = format!("{MINIMAL}variables:\n  - name: x\n    type: query\n    query: up\n");
    let e = Dashboard::from_yaml("demo.yaml", &bad_var)
        .unwrap_err()
        .to_string();
    assert!(e.contains("variables[0]") && e.contains("label_values"), "{e}");
}

fn multi(values: &[&str]) -> VarValue {
    VarValue {
        values: values.iter().map(|s| s.to_string()).collect(),
        all: false,
        all_value: None,
        regex_by_default: true,
    }
}

#[test]
fn interpolation_forms_and_formats() {
    let mut s = Scope::with_builtins(3_600_000, 15_000);
    s.set_plain("job", "api");
    s.set("host", multi(&["a.example", "b"]));
    assert_eq!(s.interpolate(r#"up{job="$job"}"#), r#"up{job="api"}"#);
    assert_eq!(s.interpolate(r#"up{job="${job}"}"#), r#"up{job="api"}"#);
    assert_eq!(s.interpolate(r#"up{job="[[job]]"}"#), r#"up{job="api"}"#);
    assert_eq!(
        s.interpolate(r#"up{host=~"$host"}"#),
        r#"up{host=~"(a\\.example|b)"}"#
    );
    assert_eq!(s.interpolate("${host:pipe}"), "a.example|b");
    assert_eq!(s.interpolate("${host:regex}"), r"(a\\.example|b)");
    assert_eq!(s.interpolate("${host:csv}"), "a.example,b");
    // unknown names and lone signs stay as written
    assert_eq!(
        s.interpolate("$nope ${nope} $ [5m] [[x"),
        "$nope ${nope} $ [5m] [[x"
    );
    assert_eq!(s.interpolate("rate(x[$__interval])"), "rate(x[15s])");
    assert_eq!(s.interpolate("$__interval_ms"), "15000");
    // max(4 × 15 s, 15 s + 15 s)
    assert_eq!(s.interpolate("[$__rate_interval]"), "[1m]");
    assert_eq!(s.interpolate("$__range $__range_s"), "3600s 3600");
    let wide = Scope::with_builtins(86_400_000, 120_000);
    assert_eq!(wide.interpolate("$__rate_interval"), "135s");
    // a single plain value is escaped for a double-quoted string
    s.set_plain("q", r#"a"b\c"#);
    assert_eq!(s.interpolate(r#""$q""#), r#""a\"b\\c""#);
}

#[test]
fn all_selection_uses_options_or_all_value() {
    let def = Variable {
        name: "svc".into(),
        kind: VariableKind::Custom,
        label: None,
        query: "a,b,c".into(),
        multi: true,
        include_all: true,
        all_value: None,
        auto: false,
        default: Vec::new(),
    };
    let opts = vars::split_list(&def.query);
    // no URL value: All by default
    let r = select(&def, opts.clone(), None, 3_600_000);
    assert_eq!(r.selected, vec![vars::ALL.to_string()]);
    let mut s = Scope::default();
    s.set("svc", r.value);
    assert_eq!(s.interpolate("$svc"), "(a|b|c)");
    // allValue override is used as is
    let custom = Variable {
        all_value: Some(".*".into()),
        ..def.clone()
    };
    let r = select(&custom, opts.clone(), None, 3_600_000);
    s.set("svc", r.value);
    assert_eq!(s.interpolate("$svc"), ".*");
    // URL selection of two values
    let url = vec!["a".to_string(), "c".to_string()];
    let r = select(&def, opts.clone(), Some(&url), 3_600_000);
    s.set("svc", r.value);
    assert_eq!(s.interpolate("$svc"), "(a|c)");
    // a single-value variable keeps the first URL value only
    let single = Variable {
        multi: false,
        include_all: false,
        ..def.clone()
    };
    let r = select(&single, opts, Some(&url), 3_600_000);
    assert_eq!(r.selected, vec!["a".to_string()]);
    s.set("svc", r.value);
    assert_eq!(s.interpolate("$svc"), "a");
}

#[test]
fn interval_auto_and_durations() {
    let def = Variable {
        name: "iv".into(),
        kind: VariableKind::Interval,
        label: None,
        query: "1m,5m".into(),
        multi: false,
        include_all: false,
        all_value: None,
        auto: true,
        default: vec!["auto".into()],
    };
    let r = select(
        &def,
        vec!["auto".into(), "1m".into(), "5m".into()],
        None,
        6 * 3_600_000,
    );
    assert_eq!(r.value.values, vec!["12m".to_string()]);
    assert_eq!(format_duration(90_000), "90s");
    assert_eq!(format_duration(3_600_000), "1h");
    assert_eq!(format_duration(1500), "1500ms");
}

#[test]
fn label_values_query_forms() {
    let q = LabelValuesQuery::parse("label_values(job)").unwrap();
    assert_eq!((q.selector.as_str(), q.label.as_str()), ("", "job"));
    let q = LabelValuesQuery::parse(r#"label_values(up{job=~"a,b"}, instance)"#).unwrap();
    assert_eq!(q.selector, r#"up{job=~"a,b"}"#);
    assert_eq!(q.label, "instance");
    assert!(LabelValuesQuery::parse("query_result(up)").is_err());
    assert!(LabelValuesQuery::parse("label_values(up, 1x)").is_err());
}

#[test]
fn legend_format() {
    let labels = didban_store::Labels::from_pairs([("instance", "h1:9100"), ("job", "node")]);
    assert_eq!(legend("{{job}} on {{ instance }}", &labels), "node on h1:9100");
    assert_eq!(legend("{{missing}}x", &labels), "x");
    assert_eq!(legend("{{unclosed", &labels), "{{unclosed");
}

#[test]
fn slugs() {
    assert_eq!(slugify("Node Exporter / Full!"), "node-exporter-full");
    assert_eq!(slugify("   "), "dashboard");
    assert_eq!(slugify("New"), "dashboard-new");
    assert!(validate_id(&slugify(&"x".repeat(100))).is_ok());
}

#[test]
fn storage_round_trip_and_collisions() {
    let data = tempfile::tempdir().unwrap();
    let prov = tempfile::tempdir().unwrap();
    std::fs::write(
        prov.path().join("team.yaml"),
        MINIMAL
            .replace("id: demo", "id: team")
            .replace("title: Demo", "title: Team board"),
    )
    .unwrap();
    std::fs::write(prov.path().join("broken.yaml"), "id: [").unwrap();
    let dirs = vec![prov.path().to_path_buf()];

    let cat = load_from(data.path(), &dirs);
    assert!(cat.get("host").is_some_and(|e| e.source == Source::Shipped));
    assert!(matches!(cat.get("team").unwrap().source, Source::Provisioned(_)));
    assert!(
        cat.errors.iter().any(|e| e.contains("broken.yaml")),
        "{:?}",
        cat.errors
    );

    let mut d = Dashboard::from_yaml("x", MINIMAL).unwrap();
    save_in(data.path(), &dirs, &d, None).unwrap();
    let file = data.path().join("dashboards/demo.yaml");
    assert!(file.exists());
    let cat = load_from(data.path(), &dirs);
    assert_eq!(cat.get("demo").unwrap().dashboard, d);
    assert_eq!(cat.get("demo").unwrap().source, Source::User);

    // creating another with the same id is refused; editing it is fine
    assert!(matches!(
        save_in(data.path(), &dirs, &d, None),
        Err(StoreError::Exists(_))
    ));
    d.title = "Demo 2".into();
    save_in(data.path(), &dirs, &d, Some("demo")).unwrap();
    assert_eq!(
        load_from(data.path(), &dirs).get("demo").unwrap().dashboard.title,
        "Demo 2"
    );

    // shipped and provisioned ids cannot be taken
    for id in ["host", "team"] {
        let mut other = d.clone();
        other.id = id.into();
        let e = save_in(data.path(), &dirs, &other, None).unwrap_err();
        assert!(matches!(e, StoreError::ReadOnly { .. }), "{e}");
        assert!(e.to_string().contains(id));
    }

    // rename moves the file
    d.id = "demo-renamed".into();
    save_in(data.path(), &dirs, &d, Some("demo")).unwrap();
    assert!(!file.exists());
    let cat = load_from(data.path(), &dirs);
    assert!(cat.get("demo").is_none() && cat.get("demo-renamed").is_some());
    // no temp files left behind
    let names: Vec<_> = std::fs::read_dir(data.path().join("dashboards"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

/// Every shipped dashboard parses, and every query parses as PromQL after interpolation
/// with default values (one made-up value per query variable).
#[test]
fn shipped_dashboards_parse_and_queries_are_promql() {
    let ids: Vec<String> = shipped_sources()
        .iter()
        .map(|(name, text)| Dashboard::from_yaml(name, text).unwrap().id)
        .collect();
    assert_eq!(
        ids,
        [
            "host",
            "postgresql",
            "redis-celery",
            "rabbitmq",
            "http-service",
            "serverless",
            "didban",
            "nginx",
            "pgbouncer",
            "gunicorn"
        ]
    );
    for (name, text) in shipped_sources() {
        let d = Dashboard::from_yaml(name, text).unwrap();
        let mut scope = Scope::with_builtins(3_600_000, 15_000);
        for v in &d.variables {
            let options = match v.kind {
                VariableKind::Query => vec!["value-1".to_string(), "value.2".to_string()],
                _ => vars::split_list(&v.query),
            };
            scope.set(&v.name, select(v, options, None, 3_600_000).value);
            if v.kind == VariableKind::Query {
                let q = LabelValuesQuery::parse(&v.query).unwrap();
                let sel = scope.interpolate(&q.selector);
                if !sel.is_empty() {
                    promql_parser::parser::parse(&sel)
                        .unwrap_or_else(|e| panic!("{name} {}: {e}: {sel}", v.name));
                }
            }
        }
        assert!(!d.panels.is_empty(), "{name}");
        for p in &d.panels {
            for q in &p.queries {
                let expr = scope.interpolate(&q.expr);
                assert!(!expr.contains('$'), "{name} {:?}: uninterpolated {expr}", p.title);
                promql_parser::parser::parse(&expr)
                    .unwrap_or_else(|e| panic!("{name} panel {:?}: {e}\n{expr}", p.title));
            }
        }
    }
}

const GRAFANA: &str = r##"{
  "dashboard": {
    "uid": "abc",
    "title": "Shop API",
    "tags": ["shop"],
    "schemaVersion": 39,
    "refresh": "1m",
    "time": {"from": "now-6h", "to": "now"},
    "templating": {"list": [
      {"name": "ds", "type": "datasource", "query": "prometheus"},
      {"name": "job", "type": "query", "query": {"query": "label_values(up, job)", "refId": "A"},
       "multi": true, "includeAll": true, "allValue": ".+", "current": {"value": ["$__all"]}},
      {"name": "env", "type": "custom", "query": "prod,staging"},
      {"name": "iv", "type": "interval", "query": "1m,5m,1h", "auto": true},
      {"name": "region", "type": "constant", "query": "eu"},
      {"name": "adhoc", "type": "adhoc"}
    ]},
    "panels": [
      {"type": "timeseries", "title": "Rate", "gridPos": {"x": 0, "y": 0, "w": 12, "h": 8},
       "targets": [{"expr": "sum(rate(http_requests_total{job=~\"$job\"}[$__rate_interval]))", "legendFormat": "{{job}}"},
                   {"expr": "hidden", "hide": true}],
       "fieldConfig": {"defaults": {"unit": "reqps", "decimals": 1, "min": 0,
         "thresholds": {"steps": [{"color": "green", "value": null}, {"color": "semi-dark-red", "value": 80}]},
         "custom": {"stacking": {"mode": "normal"}}}}},
      {"type": "row", "title": "More", "collapsed": true, "panels": [
        {"type": "singlestat", "title": "Up", "gridPos": {"x": 12, "y": 9, "w": 6, "h": 4},
         "targets": [{"expr": "up"}]},
        {"type": "piechart", "title": "Pie", "gridPos": {"x": 18, "y": 9, "w": 6, "h": 4}}
      ]},
      {"type": "text", "title": "Notes", "options": {"content": "Hello <b>world</b>"}},
      {"type": "logs", "title": "Loki logs", "targets": [{"expr": ""}]},
      {"type": "graph", "title": "Loki", "targets": [{"logql": "{app=\"x\"}"}]}
    ]
  }
}"##;

#[test]
fn grafana_import_converts_panels_variables_and_notes() {
    let d = grafana::import(GRAFANA).unwrap();
    assert_eq!(d.id, "shop-api");
    assert_eq!(d.tags, ["shop"]);
    assert_eq!(d.refresh.as_deref(), Some("1m"));
    assert_eq!(d.time.from, "now-6h");
    let names: Vec<&str> = d.variables.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["job", "env", "iv", "region"]);
    let job = &d.variables[0];
    assert_eq!(job.kind, VariableKind::Query);
    assert_eq!(job.query, "label_values(up, job)");
    assert!(job.multi && job.include_all);
    assert_eq!(job.all_value.as_deref(), Some(".+"));
    assert_eq!(job.default, ["$__all"]);
    assert!(d.variables[2].auto);
    assert_eq!(d.variables[3].kind, VariableKind::Constant);

    let rate = &d.panels[0];
    assert_eq!(rate.kind, PanelKind::Stacked);
    assert_eq!(rate.queries.len(), 1, "hidden target dropped");
    assert_eq!(rate.queries[0].legend, "{{job}}");
    assert_eq!(
        (rate.unit.as_str(), rate.decimals, rate.min),
        ("reqps", Some(1), Some(0.0))
    );
    assert_eq!(
        rate.thresholds[0],
        ThresholdStep {
            value: None,
            color: "green".into()
        }
    );
    assert_eq!(
        rate.thresholds[1],
        ThresholdStep {
            value: Some(80.0),
            color: "red".into()
        }
    );
    assert_eq!((rate.x, rate.y, rate.w, rate.h), (0, 0, 12, 8));

    let up = &d.panels[1];
    assert_eq!((up.kind, up.x, up.y, up.w), (PanelKind::Stat, 12, 9, 6));
    let pie = &d.panels[2];
    assert_eq!(pie.kind, PanelKind::Text);
    assert!(pie.text.contains("piechart"), "{}", pie.text);
    assert_eq!(d.panels[3].text, "Hello <b>world</b>");
    assert_eq!(d.panels[4].kind, PanelKind::Text, "logs panel is unsupported");
    assert!(d.panels[5].text.contains("no PromQL"), "{}", d.panels[5].text);
    let notes = d.panels.last().unwrap();
    assert_eq!(notes.title, "Skipped during import");
    assert!(notes.text.contains("adhoc"), "{}", notes.text);
    // the result is a valid dashboard that survives the YAML round trip
    assert_eq!(Dashboard::from_yaml("x", &d.to_yaml()).unwrap(), d);
}

#[test]
fn grafana_import_refuses_old_schema_and_non_json() {
    let e = grafana::import(r#"{"title": "old", "schemaVersion": 12, "rows": []}"#).unwrap_err();
    assert!(e.to_string().contains("schemaVersion 12"), "{e}");
    assert!(grafana::import("not json").is_err());
}

#[test]
fn grafana_legend_order_is_imported() {
    let json = r#"{"title": "L", "schemaVersion": 39, "panels": [
        {"type": "timeseries", "title": "a", "targets": [{"expr": "up"}],
         "options": {"legend": {"sortBy": "Max", "sortDesc": true}}},
        {"type": "graph", "title": "b", "targets": [{"expr": "up"}],
         "legend": {"sort": "current", "sortDesc": false}},
        {"type": "timeseries", "title": "c", "targets": [{"expr": "up"}]},
        {"type": "stat", "title": "d", "targets": [{"expr": "up"}],
         "options": {"legend": {"sortBy": "Max", "sortDesc": true}}}
    ]}"#;
    let d = grafana::import(json).unwrap();
    use crate::chart::{LegendSort, SortBy, SortOrder};
    assert_eq!(
        d.panels[0].legend,
        Some(LegendSort {
            sort: SortOrder::Desc,
            by: SortBy::Max
        })
    );
    assert_eq!(
        d.panels[1].legend,
        Some(LegendSort {
            sort: SortOrder::Asc,
            by: SortBy::Last
        })
    );
    assert_eq!(d.panels[2].legend, None, "our default: largest mean first");
    assert_eq!(d.panels[3].legend, None);
    // The YAML round trip keeps the order.
    let again = Dashboard::from_yaml("x.yaml", &d.to_yaml()).unwrap();
    assert_eq!(again.panels[0].legend, d.panels[0].legend);
    assert!(d.to_yaml().contains("sort: desc"), "{}", d.to_yaml());
}

#[test]
fn table_columns_and_legend_order_are_checked() {
    let ok = "id: t\ntitle: T\npanels:\n  - title: S\n    type: table\n    columns: [Value, query]\n    queries: [{expr: up}]\n  - title: L\n    type: timeseries\n    legend: {sort: asc, by: last}\n    queries: [{expr: up}]\n";
    let d = Dashboard::from_yaml("ok.yaml", ok).unwrap();
    assert_eq!(d.panels[0].columns, ["Value", "query"]);
    assert_eq!(d.panels[1].legend.unwrap().by, crate::chart::SortBy::Last);
    let twice = ok.replace("[Value, query]", "[Value, Value]");
    let e = Dashboard::from_yaml("t.yaml", &twice).unwrap_err().to_string();
    assert!(e.contains("columns[1]") && e.contains("listed twice"), "{e}");
    let on_chart = ok.replace("    legend: {sort: asc, by: last}\n", "    columns: [Value]\n");
    let e = Dashboard::from_yaml("t.yaml", &on_chart).unwrap_err().to_string();
    assert!(e.contains("only table panels have columns"), "{e}");
    let coloured = ok.replace(
        "    legend: {sort: asc, by: last}\n",
        "    colors: {\"5xx\": purple}\n",
    );
    let d = Dashboard::from_yaml("t.yaml", &coloured).unwrap();
    assert_eq!(d.panels[1].colors["5xx"], "purple");
    let bad = coloured.replace("purple", "pink");
    let e = Dashboard::from_yaml("t.yaml", &bad).unwrap_err().to_string();
    assert!(e.contains("colors.5xx") && e.contains("pink"), "{e}");
    let bad_by = ok.replace("by: last", "by: median");
    let e = Dashboard::from_yaml("t.yaml", &bad_by).unwrap_err().to_string();
    assert!(e.contains("median"), "{e}");
}

#[test]
fn grafana_exemplar_toggle_and_native_heatmap_are_imported() {
    let json = r#"{"title": "N", "schemaVersion": 39, "panels": [
        {"type": "timeseries", "title": "p95", "targets": [
            {"expr": "histogram_quantile(0.95, sum(rate(http_server_duration_seconds[5m])))", "exemplar": true}]},
        {"type": "timeseries", "title": "rate", "targets": [{"expr": "sum(rate(x_total[5m]))", "exemplar": false}]},
        {"type": "stat", "title": "s", "targets": [{"expr": "up", "exemplar": true}]},
        {"type": "heatmap", "title": "h", "targets": [
            {"expr": "sum(rate(http_server_duration_seconds[$__rate_interval]))", "format": "heatmap"}]}
    ]}"#;
    let d = grafana::import(json).unwrap();
    let flags: Vec<bool> = d.panels.iter().map(|p| p.exemplars).collect();
    assert_eq!(
        flags,
        [true, false, false, false],
        "exemplar dots only on time series"
    );
    assert_eq!(d.panels[3].kind, PanelKind::Heatmap);
    assert_eq!(
        d.panels[3].queries[0].expr,
        "sum(rate(http_server_duration_seconds[$__rate_interval]))"
    );
    // The YAML round trip keeps the toggle, and leaves it out when off.
    let yaml = d.to_yaml();
    assert_eq!(yaml.matches("exemplars: true").count(), 1, "{yaml}");
    let again = Dashboard::from_yaml("n.yaml", &yaml).unwrap();
    assert!(again.panels[0].exemplars && !again.panels[1].exemplars);
}
