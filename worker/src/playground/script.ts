/**
 * The playground's script: the TypeScript modules of ./client/, bundled by esbuild into one IIFE (nothing leaks
 * into `window`) by scripts/build-playground.ts, which writes ./generated/app-js.ts.
 */
export { PLAYGROUND_JS } from './generated/app-js.ts';
