/**
 * The playground's script, assembled from its parts into one strict IIFE (so nothing leaks into `window`). It is
 * plain browser JavaScript kept as text: the worker has no bundling step for browser code, and the end-to-end
 * browser test (test/e2e/playground.test.ts) is what runs it.
 */
import { API_JS } from './client/api.ts';
import { CHART_JS } from './client/chart.ts';
import { COLUMNS_JS } from './client/columns.ts';
import { MAIN_JS } from './client/main.ts';

/** The body of /playground/app.js. */
export const PLAYGROUND_JS = `(() => {\n'use strict';\n${API_JS}\n${CHART_JS}\n${COLUMNS_JS}\n${MAIN_JS}\n})();\n`;
