/** Everything `shared/` offers, for importers that want one entry point. Each module has one job; see its comment. */
export * from './errors.ts';
export * from './fields.ts';
export * from './generation-fields.ts';
export * from './chat-request.ts';
export * from './completion-request.ts';
export * from './logits-request.ts';
export * from './parse-request.ts';
export * from './responses.ts';
export * from './sampling-defaults.ts';
export * from './lambda-policy.ts';
export * from './signing.ts';
export * from './sse.ts';
