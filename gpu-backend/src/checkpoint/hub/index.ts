/** Hugging Face model ids: resolution from the hub cache, download into it, progress. */
export { resolveModelSource, type ResolveOptions } from './resolve-model.ts';
export { isModelId, ModelSourceError } from './model-id.ts';
export { downloadReporter } from './progress.ts';
export type { DownloadEvent } from './download.ts';
