//! `Strategy::ALL` is the one list of strategies. The CLI's `--strategy` help is built from it
//! (checked in tests/cli.rs); the npm package's types and the web demo's words for each
//! strategy are written by hand in their own languages, so they are checked against it here,
//! in the list's order. (At run time the package's `strategies()` returns the list itself: the
//! package's and the demo's own tests check the types and the demo's menus against that too.)

use unmask::diffusion::Strategy;

fn read(path: &str) -> String {
    let full = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// The part of `text` from `start` to the first `end` after it.
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).unwrap_or_else(|| panic!("no `{start}`"));
    let rest = &text[from + start.len()..];
    &rest[..rest
        .find(end)
        .unwrap_or_else(|| panic!("no `{end}` after `{start}`"))]
}

/// Every `"…"` string in `text`.
fn quoted(text: &str) -> Vec<&str> {
    text.split('"').skip(1).step_by(2).collect()
}

fn names() -> Vec<&'static str> {
    Strategy::ALL.iter().map(|s| s.name).collect()
}

/// `StrategyName` in index.d.ts: a union of each name; `Strategy`, what
/// `InfillOptions.strategy` takes, adds `threshold:${number}`.
#[test]
fn npm_types_name_every_strategy() {
    let dts = read("bindings/npm/index.d.ts");
    let union = between(&dts, "export type StrategyName =", ";");
    assert_eq!(quoted(union), names(), "index.d.ts: {union}");
    let strategy = between(&dts, "export type Strategy =", ";");
    assert!(
        strategy.contains("StrategyName") && strategy.contains("`threshold:${number}`"),
        "{strategy}"
    );
    assert!(
        dts.contains("strategy?: Strategy;"),
        "InfillOptions.strategy"
    );
}

/// `STRATEGIES` in the demo's presets.js: one entry per strategy (and the model's default,
/// the empty value), each value one `--strategy` reads.
#[test]
fn the_demo_offers_every_strategy() {
    let js = read("www/app/presets.js");
    let list = between(&js, "export const STRATEGIES", "];");
    let values: Vec<&str> = list
        .split("value: ")
        .skip(1)
        .filter_map(|v| quoted(v).first().copied())
        .filter(|v| !v.is_empty())
        .collect();
    let offered: Vec<String> = values
        .iter()
        .map(|v| {
            let s: Strategy = v.parse().unwrap_or_else(|e| panic!("presets.js: {e}"));
            s.to_string().split(':').next().unwrap().to_string()
        })
        .collect();
    assert_eq!(offered, names(), "presets.js: {values:?}");
}
