/** The playground's style sheet (served from the page's origin, as the CSP requires). */
export const PLAYGROUND_CSS = `
:root {
  --bg: #f6f7f9; --panel: #fff; --ink: #1f2430; --muted: #667085; --line: #e3e6eb; --accent: #4f46e5;
  --error: #b42318; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
  background: var(--bg);
}
* { box-sizing: border-box; }
body { margin: 0; }
.top { padding: 14px 24px 4px; }
.top h1 { margin: 0; font-size: 22px; font-weight: 650; }
.accent { color: var(--accent); }
.formula { margin: 4px 0 0; color: var(--muted); font-size: 13px; }
main { padding: 8px 24px 24px; display: grid; gap: 12px; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; }
.row { display: flex; align-items: center; gap: 10px; flex-wrap: wrap; }
.grow { flex: 1; }
.connect { display: flex; align-items: center; gap: 12px; flex-wrap: wrap; }
label { font-size: 13px; color: var(--muted); display: inline-flex; align-items: center; gap: 6px; }
input, select, textarea, button { font: inherit; font-size: 14px; color: var(--ink); }
input[type=password], input[type=text] { width: 22em; }
input, select, textarea { border: 1px solid var(--line); border-radius: 6px; padding: 5px 7px; background: #fff; }
input[type=number] { width: 5.5em; }
textarea { width: 100%; margin: 6px 0 8px; resize: vertical; }
button { border: 1px solid var(--line); border-radius: 6px; padding: 5px 12px; background: #fff; cursor: pointer; }
button:hover:not(:disabled) { border-color: var(--accent); }
button:disabled { opacity: .5; cursor: default; }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
.status { font-size: 13px; color: var(--muted); }
.status.error, .note.error { color: var(--error); }
.note { font-size: 12px; color: var(--muted); }
.lambda-label { font-size: 20px; color: var(--accent); font-weight: 650; }
#lambda { flex: 1; min-width: 200px; accent-color: var(--accent); }
#lambda-value { font-variant-numeric: tabular-nums; font-weight: 600; min-width: 4em; }
.presets { display: inline-flex; gap: 6px; flex-wrap: wrap; }
.presets button { font-size: 12px; padding: 3px 9px; border-radius: 999px; }
.presets button.active { border-color: var(--accent); color: var(--accent); }
.chart { margin: 8px 0 0; }
.chart figcaption { font-size: 12px; color: var(--muted); margin-bottom: 4px; }
.chart .prefix { display: flex; margin-bottom: 4px; }
.chart .prefix input { flex: 1; min-width: 0; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 13px; }
#chart { width: 100%; max-height: 260px; display: block; }
#chart[data-layout=narrow] { max-height: none; }
#chart .axis { stroke: #98a2b3; stroke-width: 1; }
#chart .grid { stroke: var(--line); stroke-width: 1; }
#chart .cursor { stroke: var(--accent); stroke-width: 1.5; stroke-dasharray: 4 3; }
#chart text { font-size: 11px; fill: var(--muted); }
#chart text.token { fill: var(--ink); font-family: ui-monospace, Menlo, Consolas, monospace; }
#chart .series { fill: none; stroke-width: 2; }
.columns { display: grid; gap: 12px; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); }
.column { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 10px 12px; display: flex; flex-direction: column; gap: 6px; min-height: 200px; }
.column[data-state=streaming] { border-color: var(--accent); }
.column[data-state=error] { border-color: var(--error); }
.column .from-slider { font-size: 12px; padding: 3px 8px; }
.column[data-mode^=preset] .lambda-input { visibility: hidden; }
.column[data-mode=mix] .lambda-input { display: none; }
.column .mix-input { flex: 1; min-width: 10em; }
.meta { display: grid; grid-template-columns: auto 1fr; gap: 2px 8px; margin: 0; font-size: 12px; }
.meta dt { color: var(--muted); }
.meta dd { margin: 0; font-variant-numeric: tabular-nums; }
.output { flex: 1; margin: 0; white-space: pre-wrap; word-break: break-word; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 13px; line-height: 1.45; background: #fafbfc; border: 1px solid var(--line); border-radius: 6px; padding: 8px; min-height: 120px; }
.column[data-state=error] .output { color: var(--error); }
`;
