/** Plain SVG charts (no libraries): a line chart with markers and a horizontal bar chart. */

/** One line chart. */
export interface LineChart {
  title: string;
  xLabel: string;
  yLabel: string;
  points: { x: number; y: number; label?: string }[];
  /** format of the y tick labels */
  yFormat?: (v: number) => string;
  yMin?: number;
  yMax?: number;
  /** a vertical marker line at these x values (e.g. λ = 0 and λ = 1) */
  markers?: { x: number; text: string }[];
}

const W = 560;
const H = 360;
const M = { left: 64, right: 24, top: 60, bottom: 56 };

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A nice tick step for a range. */
function step(range: number, count: number): number {
  const raw = range / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw) ?? 10 * mag;
}

/** Renders a line chart as an SVG document. */
export function lineChart(c: LineChart): string {
  const xs = c.points.map((p) => p.x);
  const ys = c.points.map((p) => p.y);
  // a little room on both sides, so that the end points and their labels clear the axes
  const pad = (Math.max(...xs) - Math.min(...xs)) * 0.06 || 1;
  const x0 = Math.min(...xs) - pad;
  const x1 = Math.max(...xs) + pad;
  let y0 = c.yMin ?? Math.min(...ys);
  let y1 = c.yMax ?? Math.max(...ys);
  if (y1 === y0) y1 = y0 + 1;
  const ys0 = step(y1 - y0, 5);
  if (c.yMin === undefined) y0 = Math.floor(y0 / ys0) * ys0;
  if (c.yMax === undefined) y1 = Math.ceil(y1 / ys0) * ys0;
  const px = (x: number) => M.left + ((x - x0) / (x1 - x0 || 1)) * (W - M.left - M.right);
  const py = (y: number) => H - M.bottom - ((y - y0) / (y1 - y0)) * (H - M.top - M.bottom);
  const fmt = c.yFormat ?? ((v: number) => String(Math.round(v * 100) / 100));
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
  );
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${esc(c.title)}</text>`);
  for (let y = y0; y <= y1 + 1e-9; y += ys0) {
    out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${py(y).toFixed(1)}" y2="${py(y).toFixed(1)}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${M.left - 8}" y="${(py(y) + 4).toFixed(1)}" text-anchor="end" fill="#444">${esc(fmt(y))}</text>`);
  }
  for (const x of xs)
    out.push(`<text x="${px(x).toFixed(1)}" y="${H - M.bottom + 18}" text-anchor="middle" fill="#444">${x}</text>`);
  for (const m of c.markers ?? []) {
    out.push(
      `<line x1="${px(m.x).toFixed(1)}" x2="${px(m.x).toFixed(1)}" y1="${M.top}" y2="${H - M.bottom}" stroke="#999" stroke-dasharray="4 3"/>`,
    );
    out.push(`<text x="${(px(m.x) + 4).toFixed(1)}" y="${H - M.bottom - 6}" fill="#666">${esc(m.text)}</text>`);
  }
  out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${H - M.bottom}" y2="${H - M.bottom}" stroke="#333"/>`);
  out.push(`<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${H - M.bottom}" stroke="#333"/>`);
  out.push(`<text x="${W / 2}" y="${H - 14}" text-anchor="middle">${esc(c.xLabel)}</text>`);
  out.push(`<text transform="translate(16 ${H / 2}) rotate(-90)" text-anchor="middle">${esc(c.yLabel)}</text>`);
  const path = c.points.map((p, i) => `${i === 0 ? 'M' : 'L'}${px(p.x).toFixed(1)} ${py(p.y).toFixed(1)}`).join(' ');
  out.push(`<path d="${path}" fill="none" stroke="#2563eb" stroke-width="2.5"/>`);
  for (const p of c.points) {
    out.push(`<circle cx="${px(p.x).toFixed(1)}" cy="${py(p.y).toFixed(1)}" r="4" fill="#2563eb"/>`);
    if (p.label)
      out.push(
        `<text x="${px(p.x).toFixed(1)}" y="${(py(p.y) - 9).toFixed(1)}" text-anchor="middle" fill="#1e3a8a">${esc(p.label)}</text>`,
      );
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** One horizontal bar chart (one bar per row, the value written at its end). */
export function barChart(c: { title: string; xLabel: string; bars: { label: string; value: number; note?: string }[] }): string {
  const rowH = 34;
  const h = 70 + c.bars.length * rowH + 36;
  const left = 210;
  const max = Math.max(...c.bars.map((b) => b.value));
  const scale = (W - left - 120) / (max || 1);
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${h}" width="${W}" height="${h}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
  );
  out.push(`<rect width="${W}" height="${h}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${esc(c.title)}</text>`);
  c.bars.forEach((b, i) => {
    const y = 50 + i * rowH;
    out.push(`<text x="${left - 8}" y="${y + 17}" text-anchor="end">${esc(b.label)}</text>`);
    out.push(`<rect x="${left}" y="${y + 4}" width="${(b.value * scale).toFixed(1)}" height="${rowH - 10}" fill="#2563eb"/>`);
    out.push(
      `<text x="${(left + b.value * scale + 6).toFixed(1)}" y="${y + 17}" fill="#1e3a8a">${esc(`${b.value.toFixed(1)}${b.note ? `  ${b.note}` : ''}`)}</text>`,
    );
  });
  out.push(`<text x="${left + (W - left - 120) / 2}" y="${h - 14}" text-anchor="middle">${esc(c.xLabel)}</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}
