/**
 * The playground's entry: page state and wiring — the key, the model, the tenant's λ range and presets
 * (GET /v1/presets), the slider and chart (one POST /v1/logits over a λ grid, redrawn as the slider moves), and
 * the Generate / Stop buttons. Bundled by scripts/build-playground.ts into /playground/app.js.
 */
import { HEADERS } from '../../../../shared/src/headers.ts';
import { KEY_STORAGE, api, errorMessage, getJson } from './api.ts';
import { drawChart } from './chart.ts';
import { fillModeOptions, runColumn, setColumnCount, type ApiRequest } from './columns.ts';
import { bindElements, els, formatLambda, messageOf, state, type PresetsAnswer, type TopToken } from './state.ts';

/** λ grid points of the chart: the slider moves in the same steps, so every slider position has exact data. */
const GRID_POINTS = 25;
const SLIDER_MIN = -1;
const SLIDER_MAX = 2;
const CHART_TOP_K = 20;
const CHART_DEBOUNCE_MS = 400;

function setStatus(text: string, isError: boolean): void {
  els.status.textContent = text;
  els.status.classList.toggle('error', isError);
}

function setChartNote(text: string, isError: boolean): void {
  els.chartNote.textContent = text;
  els.chartNote.classList.toggle('error', isError);
}

/** The prompt as a request body for generation or logits (chat message, or raw text). */
function promptRequest(kind: 'logits' | 'generate'): ApiRequest {
  const text = els.prompt.value;
  const chat = els.format.value === 'chat';
  const body: Record<string, unknown> = { model: els.model.value };
  if (chat) body.messages = [{ role: 'user', content: text }];
  else body.prompt = text;
  if (kind === 'logits') return { path: '/v1/logits', body };
  return { path: chat ? '/v1/chat/completions' : '/v1/completions', body };
}

/** The λ values of the chart's grid over the slider's range. */
function gridLambdas(): number[] {
  const lo = Number(els.lambda.min);
  const hi = Number(els.lambda.max);
  if (hi <= lo) return [lo];
  const out: number[] = [];
  for (let i = 0; i < GRID_POINTS; i++) out.push(Math.round((lo + ((hi - lo) * i) / (GRID_POINTS - 1)) * 10000) / 10000);
  return out;
}

function showLambda(): void {
  els.lambdaValue.textContent = formatLambda(Number(els.lambda.value));
  for (const b of els.presets.querySelectorAll<HTMLButtonElement>('button')) {
    b.classList.toggle('active', Number(b.dataset.lambda) === Number(els.lambda.value));
  }
  if (state.grid !== null) drawChart(els.chart, state.grid, Number(els.lambda.value));
}

interface LogitsAnswer {
  results: { lambda: number; positions: { top_logprobs: TopToken[] }[] }[];
}

/** Fetches the blended top-k over the whole λ grid in one call; a newer call supersedes an older one. */
async function refreshChart(): Promise<void> {
  clearTimeout(state.chartTimer);
  if (!state.presets || !els.model.value) return;
  if (!state.presets.allow_explicit_lambda) {
    setChartNote('this key may not send explicit λ values, so the chart over λ is not available', true);
    return;
  }
  if (els.prompt.value.trim() === '') {
    setChartNote('type a prompt to see its next-token distribution', false);
    return;
  }
  const seq = ++state.chartSeq;
  const request = promptRequest('logits');
  // the chart continues the answer so far: an assistant message to continue, or more raw text
  const prefix = els.chartPrefix.value;
  if (prefix !== '') {
    if (request.body.messages !== undefined) {
      request.body.messages = [...(request.body.messages as unknown[]), { role: 'assistant', content: prefix }];
      request.body.continue_final_message = true;
    } else {
      request.body.prompt = String(request.body.prompt) + prefix;
    }
  }
  const lambdas = gridLambdas();
  request.body.lambdas = lambdas;
  request.body.top_logprobs = CHART_TOP_K;
  setChartNote('computing ' + lambdas.length + ' blends from one forward pass…', false);
  try {
    const res = await api(request.path, { method: 'POST', body: request.body });
    if (seq !== state.chartSeq) return;
    if (!res.ok) {
      setChartNote(await errorMessage(res), true);
      return;
    }
    const body = (await res.json()) as LogitsAnswer;
    if (seq !== state.chartSeq) return;
    state.grid = {
      lambdas: body.results.map((r) => r.lambda),
      tops: body.results.map((r) => r.positions[r.positions.length - 1].top_logprobs),
    };
    els.chart.dataset.requests = String(Number(els.chart.dataset.requests || 0) + 1);
    const count = (res.headers.get(HEADERS.lambda) || '?').split(',').length;
    setChartNote(HEADERS.lambda + ': ' + count + ' λ values, top ' + CHART_TOP_K + ' tokens each', false);
    showLambda();
  } catch (err) {
    if (seq === state.chartSeq) setChartNote(messageOf(err), true);
  }
}

function scheduleChart(): void {
  clearTimeout(state.chartTimer);
  state.chartTimer = setTimeout(refreshChart, CHART_DEBOUNCE_MS);
}

function renderPresets(p: PresetsAnswer): void {
  els.presets.replaceChildren(
    ...p.data.map((preset) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.dataset.preset = preset.name;
      b.dataset.lambda = String(preset.lambda);
      b.textContent = preset.name + ' · λ ' + formatLambda(preset.lambda);
      b.addEventListener('click', () => {
        els.lambda.value = String(preset.lambda);
        showLambda();
      });
      return b;
    }),
  );
  const range = p.lambda_range;
  els.rangeNote.textContent =
    'your range: [' +
    formatLambda(range.min) +
    ', ' +
    formatLambda(range.max) +
    ']' +
    (p.allow_explicit_lambda ? '' : ' · presets only') +
    ' · default: ' +
    (p.default_preset ? p.default_preset + ', ' : '') +
    'λ ' +
    formatLambda(p.default_lambda);
}

/** Loads the λ range and presets of the chosen model, then sets up the slider, columns and chart. */
async function loadModel(): Promise<void> {
  state.grid = null;
  els.chart.replaceChildren();
  const presets = await getJson<PresetsAnswer>('/v1/presets?model=' + encodeURIComponent(els.model.value));
  state.presets = presets;
  const range = presets.lambda_range;
  const lo = Math.max(SLIDER_MIN, range.min);
  const hi = Math.min(SLIDER_MAX, range.max);
  els.lambda.min = String(lo);
  els.lambda.max = String(hi);
  els.lambda.step = hi > lo ? String((hi - lo) / (GRID_POINTS - 1)) : 'any';
  els.lambda.value = String(Math.min(hi, Math.max(lo, presets.default_lambda)));
  els.lambda.disabled = !presets.allow_explicit_lambda;
  renderPresets(presets);
  for (const col of state.columns) fillModeOptions(col, col.mode.value);
  els.generate.disabled = false;
  showLambda();
  await refreshChart();
}

/** Stores the key, lists the models, and loads the first. */
async function connect(): Promise<void> {
  state.key = els.apiKey.value.trim();
  if (state.key === '') {
    setStatus('enter an API key first', true);
    return;
  }
  localStorage.setItem(KEY_STORAGE, state.key);
  setStatus('connecting…', false);
  try {
    const models = await getJson<{ data: { id: string }[] }>('/v1/models');
    if (models.data.length === 0) throw new Error('this key has no models; ask your admin to grant one');
    const chosen = els.model.value;
    els.model.replaceChildren(
      ...models.data.map((m) => {
        const o = document.createElement('option');
        o.value = m.id;
        o.textContent = m.id;
        return o;
      }),
    );
    if (models.data.some((m) => m.id === chosen)) els.model.value = chosen;
    els.model.disabled = false;
    await loadModel();
    setStatus('connected · ' + models.data.length + ' model' + (models.data.length === 1 ? '' : 's'), false);
    document.body.dataset.ready = 'true';
  } catch (err) {
    setStatus(messageOf(err), true);
  }
}

/** Starts every column at once; they stream side by side. */
async function generate(): Promise<void> {
  if (state.controller !== null) return;
  const controller = new AbortController();
  state.controller = controller;
  els.generate.disabled = true;
  els.stop.disabled = false;
  const base = promptRequest('generate');
  base.body.stream = true;
  base.body.stream_options = { include_usage: true };
  base.body.max_tokens = Number(els.maxTokens.value);
  base.body.temperature = Number(els.temperature.value);
  try {
    await Promise.all(state.columns.map((col) => runColumn(col, base, controller.signal)));
  } finally {
    state.controller = null;
    els.generate.disabled = false;
    els.stop.disabled = true;
  }
}

/**
 * The key to start with: the one this browser stored, else the local development key that a `wrangler dev` edge
 * started by `npm start` offers at /playground/dev-key (a deployed edge answers 404 there).
 */
async function initialKey(): Promise<string | null> {
  const saved = localStorage.getItem(KEY_STORAGE);
  if (saved) return saved;
  try {
    const res = await fetch('/playground/dev-key');
    if (!res.ok) return null;
    const body = (await res.json()) as { key?: unknown };
    return typeof body.key === 'string' && body.key !== '' ? body.key : null;
  } catch {
    return null;
  }
}

function init(): void {
  bindElements();
  setColumnCount(Number(els.columnCount.value));
  els.connect.addEventListener('click', connect);
  els.apiKey.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') void connect();
  });
  els.model.addEventListener('change', () => loadModel().catch((err) => setStatus(messageOf(err), true)));
  els.columnCount.addEventListener('change', () => setColumnCount(Number(els.columnCount.value)));
  els.lambda.addEventListener('input', showLambda);
  els.prompt.addEventListener('input', scheduleChart);
  els.format.addEventListener('change', scheduleChart);
  els.chartPrefix.addEventListener('input', scheduleChart);
  els.generate.addEventListener('click', generate);
  els.stop.addEventListener('click', () => state.controller && state.controller.abort());
  // a resize can cross the wide/narrow layout boundary of the chart
  window.addEventListener('resize', () => showLambda());
  void initialKey().then((key) => {
    if (key === null) return;
    els.apiKey.value = key;
    void connect();
  });
}

document.addEventListener('DOMContentLoaded', init);
