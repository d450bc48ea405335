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

/// `STRATEGY_NOTES` in the demo's presets.js: the page's label and help for each strategy, by
/// name, after the model's default (`default`). The menu itself is built from the package's
/// `strategies()` at run time; a note per strategy keeps the page's words complete, and a
/// note's `value` (what the page sends) must be one `--strategy` reads as that strategy.
#[test]
fn the_demo_describes_every_strategy() {
    let js = read("www/app/presets.js");
    let notes = between(&js, "export const STRATEGY_NOTES = {", "\n};");
    let mut named = Vec::new();
    for line in notes
        .lines()
        .filter(|l| l.starts_with("  ") && l.contains(": {"))
    {
        let key = line[..line.find(": {").unwrap()].trim().trim_matches('"');
        if key == "default" {
            continue;
        }
        if let Some(value) = line
            .split("value: ")
            .nth(1)
            .and_then(|v| quoted(v).first().copied())
        {
            let s: Strategy = value
                .parse()
                .unwrap_or_else(|e| panic!("presets.js: {key}: {e}"));
            assert_eq!(
                s.to_string().split(':').next(),
                Some(key),
                "presets.js: {line}"
            );
        }
        named.push(key);
    }
    assert_eq!(named, names(), "presets.js: STRATEGY_NOTES");
}
