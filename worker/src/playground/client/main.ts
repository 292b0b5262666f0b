/**
 * Browser code (as text, served in app.js): page state and wiring — the key, the model, the tenant's λ range
 * and presets (GET /v1/presets), the slider and chart (one POST /v1/logits over a λ grid, redrawn as the slider
 * moves), and the Generate / Stop buttons.
 */
export const MAIN_JS = String.raw`
/** λ grid points of the chart: the slider moves in the same steps, so every slider position has exact data. */
const GRID_POINTS = 25;
const SLIDER_MIN = -1;
const SLIDER_MAX = 2;
const CHART_TOP_K = 20;
const CHART_DEBOUNCE_MS = 400;

const state = { key: '', presets: null, grid: null, columns: [], controller: null, chartSeq: 0, chartTimer: 0 };
const els = {};

function setStatus(text, isError) {
  els.status.textContent = text;
  els.status.classList.toggle('error', Boolean(isError));
}

function setChartNote(text, isError) {
  els.chartNote.textContent = text;
  els.chartNote.classList.toggle('error', Boolean(isError));
}

/** The prompt as a request body for generation or logits (chat message, or raw text). */
function promptRequest(kind) {
  const text = els.prompt.value;
  const chat = els.format.value === 'chat';
  const body = { model: els.model.value };
  if (chat) body.messages = [{ role: 'user', content: text }];
  else body.prompt = text;
  if (kind === 'logits') return { path: '/v1/logits', body: body };
  return { path: chat ? '/v1/chat/completions' : '/v1/completions', body: body };
}

/** The λ values of the chart's grid over the slider's range. */
function gridLambdas() {
  const lo = Number(els.lambda.min);
  const hi = Number(els.lambda.max);
  if (hi <= lo) return [lo];
  const out = [];
  for (let i = 0; i < GRID_POINTS; i++) out.push(Math.round((lo + ((hi - lo) * i) / (GRID_POINTS - 1)) * 10000) / 10000);
  return out;
}

function showLambda() {
  els.lambdaValue.textContent = formatLambda(Number(els.lambda.value));
  for (const b of els.presets.querySelectorAll('button')) b.classList.toggle('active', Number(b.dataset.lambda) === Number(els.lambda.value));
  if (state.grid !== null) drawChart(els.chart, state.grid, Number(els.lambda.value));
}

/** Fetches the blended top-k over the whole λ grid in one call; a newer call supersedes an older one. */
async function refreshChart() {
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
    const body = await res.json();
    if (seq !== state.chartSeq) return;
    state.grid = { lambdas: body.results.map((r) => r.lambda), tops: body.results.map((r) => r.positions[r.positions.length - 1].top_logprobs) };
    els.chart.dataset.requests = String(Number(els.chart.dataset.requests || 0) + 1);
    setChartNote('x-realign-lambda: ' + (res.headers.get('x-realign-lambda') || '?').split(',').length + ' λ values, top ' + CHART_TOP_K + ' tokens each', false);
    showLambda();
  } catch (err) {
    if (seq === state.chartSeq) setChartNote(err.message || String(err), true);
  }
}

function scheduleChart() {
  clearTimeout(state.chartTimer);
  state.chartTimer = setTimeout(refreshChart, CHART_DEBOUNCE_MS);
}

function renderPresets() {
  const p = state.presets;
  els.presets.replaceChildren(...p.data.map((preset) => {
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
  }));
  const range = p.lambda_range;
  els.rangeNote.textContent = 'your range: [' + formatLambda(range.min) + ', ' + formatLambda(range.max) + ']' + (p.allow_explicit_lambda ? '' : ' · presets only') + ' · default: ' + (p.default_preset ? p.default_preset + ', ' : '') + 'λ ' + formatLambda(p.default_lambda);
}

/** Loads the λ range and presets of the chosen model, then sets up the slider, columns and chart. */
async function loadModel() {
  state.grid = null;
  els.chart.replaceChildren();
  state.presets = await getJson('/v1/presets?model=' + encodeURIComponent(els.model.value));
  const range = state.presets.lambda_range;
  const lo = Math.max(SLIDER_MIN, range.min);
  const hi = Math.min(SLIDER_MAX, range.max);
  els.lambda.min = String(lo);
  els.lambda.max = String(hi);
  els.lambda.step = hi > lo ? String((hi - lo) / (GRID_POINTS - 1)) : 'any';
  els.lambda.value = String(Math.min(hi, Math.max(lo, state.presets.default_lambda)));
  els.lambda.disabled = !state.presets.allow_explicit_lambda;
  renderPresets();
  for (const col of state.columns) fillModeOptions(col, col.mode.value);
  els.generate.disabled = false;
  showLambda();
  await refreshChart();
}

/** Stores the key, lists the models, and loads the first. */
async function connect() {
  state.key = els.apiKey.value.trim();
  if (state.key === '') {
    setStatus('enter an API key first', true);
    return;
  }
  localStorage.setItem(KEY_STORAGE, state.key);
  setStatus('connecting…', false);
  try {
    const models = await getJson('/v1/models');
    if (models.data.length === 0) throw new Error('this key has no models; ask your admin to grant one');
    const chosen = els.model.value;
    els.model.replaceChildren(...models.data.map((m) => {
      const o = document.createElement('option');
      o.value = m.id;
      o.textContent = m.id;
      return o;
    }));
    if (models.data.some((m) => m.id === chosen)) els.model.value = chosen;
    els.model.disabled = false;
    await loadModel();
    setStatus('connected · ' + models.data.length + ' model' + (models.data.length === 1 ? '' : 's'), false);
    document.body.dataset.ready = 'true';
  } catch (err) {
    setStatus(err.message || String(err), true);
  }
}

/** Starts every column at once; they stream side by side. */
async function generate() {
  if (state.controller !== null) return;
  state.controller = new AbortController();
  els.generate.disabled = true;
  els.stop.disabled = false;
  const base = promptRequest('generate');
  base.body.stream = true;
  base.body.stream_options = { include_usage: true };
  base.body.max_tokens = Number(els.maxTokens.value);
  base.body.temperature = Number(els.temperature.value);
  try {
    await Promise.all(state.columns.map((col) => runColumn(col, base, state.controller.signal)));
  } finally {
    state.controller = null;
    els.generate.disabled = false;
    els.stop.disabled = true;
  }
}

function init() {
  const byId = (id) => document.getElementById(id);
  Object.assign(els, {
    apiKey: byId('api-key'), connect: byId('connect'), model: byId('model'), status: byId('status'), prompt: byId('prompt'),
    format: byId('format'), maxTokens: byId('max-tokens'), temperature: byId('temperature'), columnCount: byId('column-count'),
    generate: byId('generate'), stop: byId('stop'), lambda: byId('lambda'), lambdaValue: byId('lambda-value'),
    rangeNote: byId('range-note'), presets: byId('presets'), chart: byId('chart'), chartNote: byId('chart-note'), columns: byId('columns'),
  });
  setColumnCount(Number(els.columnCount.value));
  els.connect.addEventListener('click', connect);
  els.apiKey.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') connect();
  });
  els.model.addEventListener('change', () => loadModel().catch((err) => setStatus(err.message || String(err), true)));
  els.columnCount.addEventListener('change', () => setColumnCount(Number(els.columnCount.value)));
  els.lambda.addEventListener('input', showLambda);
  els.prompt.addEventListener('input', scheduleChart);
  els.format.addEventListener('change', scheduleChart);
  els.generate.addEventListener('click', generate);
  els.stop.addEventListener('click', () => state.controller && state.controller.abort());
  const saved = localStorage.getItem(KEY_STORAGE);
  if (saved) {
    els.apiKey.value = saved;
    connect();
  }
}

document.addEventListener('DOMContentLoaded', init);
`;
