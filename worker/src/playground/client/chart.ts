/**
 * Browser code (as text, served in app.js): the hand-drawn SVG chart of the blended next-token distribution.
 * Left: the probability of the top tokens across the λ grid (one /v1/logits call), with a cursor at the slider.
 * Right: bars of the top tokens at the grid λ under the slider. Token text goes in with textContent only.
 */
export const CHART_JS = String.raw`
const SVG_NS = 'http://www.w3.org/2000/svg';
const PALETTE = ['#4f46e5', '#e11d48', '#059669', '#d97706', '#0891b2', '#7c3aed', '#64748b', '#db2777'];
const CHART_TOKENS = 6;
const LINE_BOX = { x0: 44, x1: 330, y0: 190, y1: 18 };
const BAR_BOX = { label: 452, x0: 458, x1: 650, top: 22, step: 27 };

/** Makes an SVG element with attributes, appended to parent. */
function svgEl(tag, attrs, parent) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const name of Object.keys(attrs)) el.setAttribute(name, String(attrs[name]));
  parent.appendChild(el);
  return el;
}

/** An SVG text node; the text is set with textContent, never parsed. */
function svgText(text, attrs, parent) {
  const el = svgEl('text', attrs, parent);
  el.textContent = text;
  return el;
}

/** A token as a label: whitespace made visible, long tokens cut. */
function tokenLabel(token) {
  const shown = token.replace(/ /g, '␣').replace(/\n/g, '↵').replace(/\t/g, '⇥');
  if (shown === '') return '∅';
  return shown.length > 14 ? shown.slice(0, 13) + '…' : shown;
}

/** Index of the grid λ nearest to lambda. */
function nearestIndex(lambdas, lambda) {
  let best = 0;
  for (let i = 1; i < lambdas.length; i++) if (Math.abs(lambdas[i] - lambda) < Math.abs(lambdas[best] - lambda)) best = i;
  return best;
}

/** Formats a λ for display: at most three decimals, no trailing zeros, a real minus sign. */
function formatLambda(x) {
  return String(Math.round(x * 1000) / 1000).replace('-', '−');
}

/**
 * Draws grid = {lambdas: number[], tops: [{token_id, token, logprob}][]} (one top list per λ) with the cursor
 * at lambda; sets data-lambda on the svg and data-token-id / data-prob on each bar, which tests read.
 */
function drawChart(svg, grid, lambda) {
  svg.replaceChildren();
  const at = nearestIndex(grid.lambdas, lambda);
  const shown = grid.tops[at].slice(0, CHART_TOKENS);
  const lo = grid.lambdas[0];
  const hi = grid.lambdas[grid.lambdas.length - 1];
  const maxP = Math.max(0.05, ...grid.tops.flatMap((top) => top.filter((t) => shown.some((s) => s.token_id === t.token_id)).map((t) => Math.exp(t.logprob))));
  const yTop = Math.min(1, Math.ceil(maxP * 10) / 10);
  const x = (l) => (hi === lo ? (LINE_BOX.x0 + LINE_BOX.x1) / 2 : LINE_BOX.x0 + ((l - lo) / (hi - lo)) * (LINE_BOX.x1 - LINE_BOX.x0));
  const y = (p) => LINE_BOX.y0 - (p / yTop) * (LINE_BOX.y0 - LINE_BOX.y1);
  svg.dataset.lambda = String(grid.lambdas[at]);

  for (const p of [0, yTop / 2, yTop]) {
    svgEl('line', { class: 'grid', x1: LINE_BOX.x0, x2: LINE_BOX.x1, y1: y(p), y2: y(p) }, svg);
    svgText(Math.round(p * 100) + '%', { x: LINE_BOX.x0 - 6, y: y(p) + 4, 'text-anchor': 'end' }, svg);
  }
  const ticks = [lo, hi];
  for (const t of [0, 1]) if (t > lo && t < hi) ticks.push(t);
  for (const t of ticks) {
    svgEl('line', { class: 'axis', x1: x(t), x2: x(t), y1: LINE_BOX.y0, y2: LINE_BOX.y0 + 4 }, svg);
    svgText(formatLambda(t), { x: x(t), y: LINE_BOX.y0 + 16, 'text-anchor': 'middle' }, svg);
  }
  svgEl('line', { class: 'axis', x1: LINE_BOX.x0, x2: LINE_BOX.x1, y1: LINE_BOX.y0, y2: LINE_BOX.y0 }, svg);
  svgText('λ', { x: LINE_BOX.x1 + 8, y: LINE_BOX.y0 + 4 }, svg);

  const series = svgEl('g', { class: 'lines' }, svg);
  shown.forEach((tok, rank) => {
    // a token that drops out of a λ's top list leaves a gap rather than a guessed value
    let d = '';
    let pen = 'M';
    grid.lambdas.forEach((l, i) => {
      const hit = grid.tops[i].find((t) => t.token_id === tok.token_id);
      if (hit === undefined) {
        pen = 'M';
        return;
      }
      d += pen + x(l).toFixed(1) + ' ' + y(Math.exp(hit.logprob)).toFixed(1) + ' ';
      pen = 'L';
    });
    svgEl('path', { class: 'series', d: d.trim(), stroke: PALETTE[rank % PALETTE.length], 'data-token-id': tok.token_id }, series);
  });
  svgEl('line', { class: 'cursor', x1: x(grid.lambdas[at]), x2: x(grid.lambdas[at]), y1: LINE_BOX.y1 - 6, y2: LINE_BOX.y0 }, svg);
  svgText('λ = ' + formatLambda(grid.lambdas[at]), { x: x(grid.lambdas[at]), y: LINE_BOX.y1 - 9, 'text-anchor': 'middle' }, svg);

  // bars share the left panel's probability scale, so a bar and the line it continues read alike
  const bars = svgEl('g', { class: 'bars', 'data-lambda': grid.lambdas[at] }, svg);
  shown.forEach((tok, rank) => {
    const p = Math.exp(tok.logprob);
    const width = Math.max(1, (Math.min(p, yTop) / yTop) * (BAR_BOX.x1 - BAR_BOX.x0));
    const top = BAR_BOX.top + rank * BAR_BOX.step;
    svgText(tokenLabel(tok.token), { class: 'token', x: BAR_BOX.label, y: top + 13, 'text-anchor': 'end' }, bars);
    svgEl('rect', {
      class: 'bar',
      x: BAR_BOX.x0,
      y: top,
      height: 18,
      rx: 3,
      width: width.toFixed(1),
      fill: PALETTE[rank % PALETTE.length],
      'data-token-id': tok.token_id,
      'data-prob': p.toFixed(6),
    }, bars);
    svgText((p * 100).toFixed(1) + '%', { x: BAR_BOX.x0 + width + 5, y: top + 13 }, bars);
  });
}
`;
