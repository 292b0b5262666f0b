/**
 * The hand-drawn SVG chart of the blended next-token distribution. Left (or top, on a narrow screen): the
 * probability of the top tokens across the λ grid (one /v1/logits call), with a cursor at the slider. Right (or
 * below): bars of the top tokens at the grid λ under the slider. Token text goes in with textContent only.
 *
 * The drawing is laid out in SVG units that map about 1:1 to screen pixels: on a wide screen the panels sit side
 * by side in a 720-unit box, on a narrow one (less than WIDE_MIN_PX) they are stacked in a 360-unit box, so the
 * 11 px labels stay 11 px instead of shrinking with the page.
 */
import type { ChartGrid } from './state.ts';
import { formatLambda } from './state.ts';

const SVG_NS = 'http://www.w3.org/2000/svg';
const PALETTE = ['#4f46e5', '#e11d48', '#059669', '#d97706', '#0891b2', '#7c3aed', '#64748b', '#db2777'];
const CHART_TOKENS = 6;
/** Below this rendered width (px) the panels are stacked. */
const WIDE_MIN_PX = 600;

interface Layout {
  viewBox: string;
  line: { x0: number; x1: number; y0: number; y1: number };
  bars: { label: number; x0: number; x1: number; top: number; step: number };
}

const WIDE: Layout = {
  viewBox: '0 0 720 220',
  line: { x0: 44, x1: 330, y0: 190, y1: 18 },
  bars: { label: 452, x0: 458, x1: 650, top: 22, step: 27 },
};

const NARROW: Layout = {
  viewBox: '0 0 360 400',
  line: { x0: 40, x1: 330, y0: 190, y1: 18 },
  bars: { label: 120, x0: 126, x1: 310, top: 228, step: 27 },
};

type Attrs = Record<string, string | number>;

/** Makes an SVG element with attributes, appended to parent. */
function svgEl(tag: string, attrs: Attrs, parent: Element): SVGElement {
  const el = document.createElementNS(SVG_NS, tag);
  for (const name of Object.keys(attrs)) el.setAttribute(name, String(attrs[name]));
  parent.appendChild(el);
  return el;
}

/** An SVG text node; the text is set with textContent, never parsed. */
function svgText(text: string, attrs: Attrs, parent: Element): SVGElement {
  const el = svgEl('text', attrs, parent);
  el.textContent = text;
  return el;
}

/** A token as a label: whitespace made visible, long tokens cut. */
function tokenLabel(token: string): string {
  const shown = token.replace(/ /g, '␣').replace(/\n/g, '↵').replace(/\t/g, '⇥');
  if (shown === '') return '∅';
  return shown.length > 14 ? shown.slice(0, 13) + '…' : shown;
}

/** Index of the grid λ nearest to lambda. */
function nearestIndex(lambdas: number[], lambda: number): number {
  let best = 0;
  for (let i = 1; i < lambdas.length; i++) if (Math.abs(lambdas[i] - lambda) < Math.abs(lambdas[best] - lambda)) best = i;
  return best;
}

/** The layout for the svg's rendered width (a detached or hidden svg counts as wide). */
function layoutFor(svg: SVGSVGElement): Layout {
  const width = svg.getBoundingClientRect().width;
  return width > 0 && width < WIDE_MIN_PX ? NARROW : WIDE;
}

/**
 * Draws the grid (one top list per λ) with the cursor at lambda; sets data-lambda on the svg and data-token-id /
 * data-prob on each bar, which tests read.
 */
export function drawChart(svg: SVGSVGElement, grid: ChartGrid, lambda: number): void {
  svg.replaceChildren();
  const layout = layoutFor(svg);
  svg.setAttribute('viewBox', layout.viewBox);
  svg.dataset.layout = layout === WIDE ? 'wide' : 'narrow';
  const box = layout.line;
  const barBox = layout.bars;
  const at = nearestIndex(grid.lambdas, lambda);
  const shown = grid.tops[at].slice(0, CHART_TOKENS);
  const lo = grid.lambdas[0];
  const hi = grid.lambdas[grid.lambdas.length - 1];
  const shownProbs = grid.tops.flatMap((top) =>
    top.filter((t) => shown.some((s) => s.token_id === t.token_id)).map((t) => Math.exp(t.logprob)),
  );
  const maxP = Math.max(0.05, ...shownProbs);
  const yTop = Math.min(1, Math.ceil(maxP * 10) / 10);
  const x = (l: number) => (hi === lo ? (box.x0 + box.x1) / 2 : box.x0 + ((l - lo) / (hi - lo)) * (box.x1 - box.x0));
  const y = (p: number) => box.y0 - (p / yTop) * (box.y0 - box.y1);
  svg.dataset.lambda = String(grid.lambdas[at]);

  for (const p of [0, yTop / 2, yTop]) {
    svgEl('line', { class: 'grid', x1: box.x0, x2: box.x1, y1: y(p), y2: y(p) }, svg);
    svgText(Math.round(p * 100) + '%', { x: box.x0 - 6, y: y(p) + 4, 'text-anchor': 'end' }, svg);
  }
  const ticks = [lo, hi];
  for (const t of [0, 1]) if (t > lo && t < hi) ticks.push(t);
  for (const t of ticks) {
    svgEl('line', { class: 'axis', x1: x(t), x2: x(t), y1: box.y0, y2: box.y0 + 4 }, svg);
    svgText(formatLambda(t), { x: x(t), y: box.y0 + 16, 'text-anchor': 'middle' }, svg);
  }
  svgEl('line', { class: 'axis', x1: box.x0, x2: box.x1, y1: box.y0, y2: box.y0 }, svg);
  svgText('λ', { x: box.x1 + 8, y: box.y0 + 4 }, svg);

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
    const stroke = PALETTE[rank % PALETTE.length];
    svgEl('path', { class: 'series', d: d.trim(), stroke, 'data-token-id': tok.token_id }, series);
  });
  const cursorX = x(grid.lambdas[at]);
  svgEl('line', { class: 'cursor', x1: cursorX, x2: cursorX, y1: box.y1 - 6, y2: box.y0 }, svg);
  svgText('λ = ' + formatLambda(grid.lambdas[at]), { x: cursorX, y: box.y1 - 9, 'text-anchor': 'middle' }, svg);

  // bars share the line panel's probability scale, so a bar and the line it continues read alike
  const bars = svgEl('g', { class: 'bars', 'data-lambda': grid.lambdas[at] }, svg);
  shown.forEach((tok, rank) => {
    const p = Math.exp(tok.logprob);
    const width = Math.max(1, (Math.min(p, yTop) / yTop) * (barBox.x1 - barBox.x0));
    const top = barBox.top + rank * barBox.step;
    svgText(tokenLabel(tok.token), { class: 'token', x: barBox.label, y: top + 13, 'text-anchor': 'end' }, bars);
    svgEl(
      'rect',
      {
        class: 'bar',
        x: barBox.x0,
        y: top,
        height: 18,
        rx: 3,
        width: width.toFixed(1),
        fill: PALETTE[rank % PALETTE.length],
        'data-token-id': tok.token_id,
        'data-prob': p.toFixed(6),
      },
      bars,
    );
    svgText((p * 100).toFixed(1) + '%', { x: barBox.x0 + width + 5, y: top + 13 }, bars);
  });
}
