/** The playground's HTML. Static: nothing from a request or a model is ever interpolated into it. */

/** Path of the page's script. */
export const PLAYGROUND_SCRIPT_PATH = '/playground/app.js';
/** Path of the page's style sheet. */
export const PLAYGROUND_STYLE_PATH = '/playground/app.css';

/**
 * Completion budget of the page: room for the default model's longest answers (λ = −0.5 writes ~120 tokens of its
 * 256-token context), so no column of the first Generate is cut off.
 */
const DEFAULT_MAX_TOKENS = 200;

/**
 * Where the chart looks by default: the default model's answer to the default prompt up to the point where the
 * reference model goes on to write checks and the aligned one answers — the token λ decides. The first answer
 * token would be the same at every λ (a flat chart).
 */
const DEFAULT_CHART_PREFIX = '8+5=13 0+6+1=7 7+4=11 sum 1173.';

/** The page. Columns are cloned by the script from the `<template>`. */
export const PLAYGROUND_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>realign · λ playground</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${PLAYGROUND_STYLE_PATH}">
<script src="${PLAYGROUND_SCRIPT_PATH}" defer></script>
</head>
<body>
<header class="top">
  <h1>realign <span class="accent">λ</span> playground</h1>
  <p class="formula">z = λ·z<sub>aligned</sub> + (1 − λ)·z<sub>reference</sub> &nbsp;·&nbsp; λ = 0 is the reference model, λ = 1 the aligned one; outside [0, 1] extrapolates.</p>
</header>
<main>
  <section class="panel connect">
    <label>API key <input id="api-key" type="password" autocomplete="off" spellcheck="false" placeholder="rk_…"></label>
    <button id="connect" type="button">Connect</button>
    <label>Model <select id="model" disabled></select></label>
    <span id="status" class="status" role="status">Enter an API key (it stays in this browser's localStorage).</span>
  </section>
  <section class="panel prompt">
    <div class="row">
      <label for="prompt" class="grow">Prompt</label>
      <label>as <select id="format"><option value="chat" selected>chat message</option><option value="text">raw text</option></select></label>
    </div>
    <textarea id="prompt" rows="3" spellcheck="false">708+465</textarea>
    <div class="row">
      <label>max tokens <input id="max-tokens" type="number" min="1" max="4096" value="${DEFAULT_MAX_TOKENS}"></label>
      <label>temperature <input id="temperature" type="number" min="0" max="2" step="0.1" value="0"></label>
      <label>columns <select id="column-count"><option value="2">2</option><option value="3" selected>3</option></select></label>
      <span class="grow"></span>
      <button id="stop" type="button" disabled>Stop</button>
      <button id="generate" type="button" class="primary" disabled>Generate</button>
    </div>
  </section>
  <section class="panel lambda-panel">
    <div class="row">
      <label for="lambda" class="lambda-label">λ</label>
      <input id="lambda" type="range" min="-1" max="2" step="0.125" value="1" disabled>
      <output id="lambda-value" for="lambda">1</output>
    </div>
    <div class="row">
      <span id="range-note" class="note"></span>
      <span class="grow"></span>
      <span id="presets" class="presets"></span>
    </div>
    <figure class="chart">
      <figcaption>Next-token probabilities of the blended model after the prompt and the answer so far: left, the top tokens across λ; right, at the slider's λ.</figcaption>
      <label class="prefix">answer so far <input id="chart-prefix" type="text" spellcheck="false" value="${DEFAULT_CHART_PREFIX}" aria-label="the start of the answer the chart continues"></label>
      <svg id="chart" viewBox="0 0 720 220" role="img" aria-label="next-token probabilities by λ"></svg>
      <div id="chart-note" class="note"></div>
    </figure>
  </section>
  <section id="columns" class="columns" aria-live="polite"></section>
</main>
<template id="column-template">
  <article class="column" data-state="idle">
    <header class="row">
      <select class="mode" aria-label="λ source"></select>
      <input class="lambda-input" type="number" step="0.05" aria-label="explicit λ">
      <input class="mix-input" type="text" spellcheck="false" aria-label="adapter mix (name=λ, …)" placeholder="concise=0.7, safe=0.5" hidden>
      <button class="from-slider" type="button" title="use the slider's λ">← slider</button>
    </header>
    <dl class="meta">
      <dt>asked</dt><dd class="asked">–</dd>
      <dt>got</dt><dd class="got">–</dd>
    </dl>
    <pre class="output"></pre>
    <footer class="footer note"></footer>
  </article>
</template>
</body>
</html>
`;
