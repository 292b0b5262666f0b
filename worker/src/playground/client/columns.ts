/**
 * Browser code (as text, served in app.js): the generation columns. Each column asks for its own λ (explicit, or
 * a preset), streams /v1/chat/completions (or /v1/completions for raw text), and shows what it asked for next to
 * the x-realign-lambda it got. Model text is appended to a Text node, so it is never parsed as HTML.
 */
export const COLUMNS_JS = String.raw`
const DEFAULT_COLUMN_LAMBDAS = [0, 1, 1.5];

/** Builds a column from the template; spec = {mode: 'lambda' | 'preset:<name>', lambda}. */
function makeColumn(spec) {
  const el = document.getElementById('column-template').content.firstElementChild.cloneNode(true);
  const col = {
    el: el,
    mode: el.querySelector('.mode'),
    lambdaInput: el.querySelector('.lambda-input'),
    asked: el.querySelector('.asked'),
    got: el.querySelector('.got'),
    output: el.querySelector('.output'),
    footer: el.querySelector('.footer'),
    text: document.createTextNode(''),
  };
  col.output.appendChild(col.text);
  col.lambdaInput.value = String(spec.lambda);
  fillModeOptions(col, spec.mode);
  col.mode.addEventListener('change', () => syncColumnInputs(col));
  el.querySelector('.from-slider').addEventListener('click', () => {
    col.mode.value = 'lambda';
    col.lambdaInput.value = els.lambda.value;
    syncColumnInputs(col);
  });
  return col;
}

/** Lists "explicit λ" and the tenant's presets in the column's λ source menu, keeping the choice when possible. */
function fillModeOptions(col, wanted) {
  const options = [];
  if (state.presets === null || state.presets.allow_explicit_lambda) options.push(['lambda', 'explicit λ']);
  for (const p of state.presets ? state.presets.data : []) options.push(['preset:' + p.name, 'preset ' + p.name + ' (λ ' + formatLambda(p.lambda) + ')']);
  col.mode.replaceChildren(...options.map(([value, label]) => {
    const o = document.createElement('option');
    o.value = value;
    o.textContent = label;
    return o;
  }));
  if (options.some(([value]) => value === wanted)) col.mode.value = wanted;
  syncColumnInputs(col);
}

function syncColumnInputs(col) {
  const explicit = col.mode.value === 'lambda';
  col.lambdaInput.disabled = !explicit;
  col.el.dataset.mode = col.mode.value;
}

/** Shows 2 or 3 columns, keeping the settings of those that stay. */
function setColumnCount(n) {
  while (state.columns.length > n) state.columns.pop().el.remove();
  while (state.columns.length < n) {
    const col = makeColumn({ mode: 'lambda', lambda: DEFAULT_COLUMN_LAMBDAS[state.columns.length] });
    state.columns.push(col);
    els.columns.appendChild(col.el);
  }
}

/** The λ part of a column's request body and how to describe it. */
function columnChoice(col) {
  if (col.mode.value.startsWith('preset:')) {
    const name = col.mode.value.slice('preset:'.length);
    const preset = state.presets.data.find((p) => p.name === name);
    return { body: { preset: name }, label: 'preset ' + name + ' → λ ' + formatLambda(preset.lambda) };
  }
  const lambda = Number(col.lambdaInput.value);
  return { body: { lambda: lambda }, label: 'λ = ' + formatLambda(lambda) + ' (explicit)' };
}

function setColumnState(col, st, footer) {
  col.el.dataset.state = st;
  col.footer.textContent = footer;
  col.footer.classList.toggle('error', st === 'error');
}

/** Streams one generation into col; never throws (failures are shown in the column). */
async function runColumn(col, request, signal) {
  const choice = columnChoice(col);
  col.text.data = '';
  col.asked.textContent = choice.label;
  col.got.textContent = '…';
  col.el.dataset.lambdaAsked = choice.body.lambda === undefined ? '' : String(choice.body.lambda);
  col.el.dataset.lambdaGot = '';
  setColumnState(col, 'waiting', 'waiting for the first byte');
  const started = performance.now();
  try {
    const res = await api(request.path, { method: 'POST', body: Object.assign({}, request.body, choice.body), signal: signal });
    if (!res.ok) {
      col.got.textContent = '–';
      setColumnState(col, 'error', await errorMessage(res));
      return;
    }
    const got = res.headers.get('x-realign-lambda') || '?';
    const preset = res.headers.get('x-realign-preset');
    const source = res.headers.get('x-realign-lambda-source');
    col.el.dataset.lambdaGot = got;
    col.got.textContent = 'λ = ' + formatLambda(Number(got)) + ' (x-realign-lambda)' + (source ? ' · ' + source : '') + (preset && preset !== 'none' ? ' · ' + preset : '') + (res.headers.get('x-realign-lambda-clamped') ? ' · clamped' : '');
    setColumnState(col, 'streaming', 'streaming…');
    let tokens = 0;
    let finish = null;
    const completed = await readSse(res, (chunk) => {
      if (chunk.error) throw new Error(chunk.error.message || 'the stream reported an error');
      const c = chunk.choices && chunk.choices[0];
      if (c) {
        const piece = c.delta ? c.delta.content : c.text;
        if (piece) col.text.appendData(piece);
        if (c.finish_reason) finish = c.finish_reason;
      }
      if (chunk.usage) tokens = chunk.usage.completion_tokens;
    });
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    if (!completed) setColumnState(col, 'error', 'the stream ended without [DONE] after ' + seconds + ' s');
    else setColumnState(col, 'done', tokens + ' tokens · ' + seconds + ' s · finish: ' + (finish || '?'));
  } catch (err) {
    if (err && err.name === 'AbortError') setColumnState(col, 'stopped', 'stopped');
    else setColumnState(col, 'error', err && err.message ? err.message : String(err));
  }
}
`;
