/**
 * `models.json`: what `realign serve` loads and the limits it enforces. Paths are relative to the file's folder; a
 * model path may also be a Hugging Face model id (`org/name`, with an optional `revision`), see loadServerConfig.
 *
 *   { "models": [{ "id": "demo", "mode": "inra", "model": "./demo", "default_lambda": 0.5, "lambda_range": [-1, 2] }],
 *     "limits": { "max_tokens": 2048 }, "auth": { "allow_unauthenticated": false } }
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { DEFAULT_MAX_LOGITS_ENTRIES } from '../../../shared/src/logits-bounds.ts';
import type { EngineLimits } from '../engine/protocol.ts';
import type { ModelSource } from '../engine/model-loader.ts';
import { downloadReporter, isModelId, resolveModelSource, type ResolveOptions } from '../checkpoint/hub/index.ts';

const modelSchema = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9._:/-]{1,128}$/, 'model ids are 1–128 characters of letters, digits and ._:/-'),
    mode: z.enum(['single', 'inra', 'fusion']),
    model: z.string().optional(),
    aligned: z.string().optional(),
    reference: z.string().optional(),
    inra_adapter_layers: z.number().int().positive().optional(),
    /** Hugging Face revision (branch, tag or commit) of the model ids among model/aligned/reference; default main */
    revision: z.string().min(1).optional(),
    default_lambda: z.number().finite().default(1),
    lambda_range: z.tuple([z.number().finite(), z.number().finite()]).default([-1, 2]),
    max_context: z.number().int().positive().optional(),
    device: z.enum(['auto', 'cpu', 'cuda']).default('auto'),
    threads: z.number().int().positive().optional(),
    max_batch: z.number().int().positive().default(32),
    max_queue: z.number().int().nonnegative().default(256),
    kv_budget_tokens: z
      .number()
      .int()
      .positive()
      .default(1 << 18),
    max_prefill_tokens: z
      .number()
      .int()
      .positive()
      .default(1 << 14),
    /** chunked prefill: prompt tokens per chunk and per scheduler turn (EngineLimits.prefillChunkTokens); 0 off; unset: 512 on CUDA, 128 on CPU */
    prefill_chunk_tokens: z.number().int().nonnegative().optional(),
    /** greedy decode steps per run when every running sequence is greedy; unset: 16 on CUDA, 0 on CPU */
    decode_loop_steps: z.number().int().nonnegative().optional(),
    /** sampling inside the step graph (EngineLimits.deviceSampling); auto: on for CUDA, off for CPU */
    device_sampling: z.enum(['auto', 'on', 'off']).default('auto'),
    /** decode steps replayed as CUDA graphs per batch bucket (engine/captured-steps.ts); auto: on for CUDA; unset: REALIGN_CUDA_GRAPHS, else auto */
    cuda_graphs: z.enum(['auto', 'on', 'off']).optional(),
    /** a second thread for the host sampler's sampled rows (EngineLimits.drawThread); auto: where there are ≥ 2 cores */
    draw_thread: z.enum(['auto', 'on', 'off']).default('auto'),
    /** weight format of the graphs (graph/quantize.ts); unset: float32 on CPU, float16 on CUDA */
    weights: z.enum(['float32', 'float16', 'int8', 'int4']).optional(),
    /** int8/int4: weights per quantization block (a power of two ≥ 16; default 32) */
    block_size: z
      .number()
      .int()
      .min(16)
      .refine((n) => (n & (n - 1)) === 0, 'block_size must be a power of two')
      .optional(),
    /** int8/int4: parts kept in float */
    keep_float: z.array(z.enum(['lm_head', 'embedding', 'adapter'])).optional(),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.mode === 'fusion' && (!m.aligned || !m.reference))
      ctx.addIssue({ code: 'custom', message: 'fusion models need "aligned" and "reference" paths' });
    if (m.mode !== 'fusion' && !m.model) ctx.addIssue({ code: 'custom', message: `${m.mode} models need a "model" path` });
    if (m.lambda_range[0] > m.lambda_range[1])
      ctx.addIssue({ code: 'custom', message: 'lambda_range must be [min, max] with min ≤ max' });
    if (m.default_lambda < m.lambda_range[0] || m.default_lambda > m.lambda_range[1])
      ctx.addIssue({ code: 'custom', message: 'default_lambda must lie in lambda_range' });
    if ((m.block_size !== undefined || m.keep_float) && m.weights !== 'int8' && m.weights !== 'int4')
      ctx.addIssue({ code: 'custom', message: 'block_size and keep_float need "weights": "int8" or "int4"' });
  });

const configSchema = z
  .object({
    models: z.array(modelSchema).min(1),
    limits: z
      .object({
        max_body_bytes: z
          .number()
          .int()
          .positive()
          .default(1 << 20),
        max_tokens: z.number().int().positive().default(4096),
        default_max_tokens: z.number().int().positive().default(256),
        max_n: z.number().int().positive().default(8),
        max_stop: z.number().int().positive().default(8),
        max_prompt_tokens: z.number().int().positive().default(32768),
        /** how long a request's body may take to arrive once its headers have (408 after) */
        body_timeout_ms: z.number().int().positive().default(10_000),
        /** most entries (positions × distributions × top_logprobs) of one /v1/logits answer (shared/src/logits-bounds.ts) */
        max_logits_entries: z.number().int().positive().default(DEFAULT_MAX_LOGITS_ENTRIES),
      })
      .strict()
      // absent: parsed as {}, so every field takes its default above
      .prefault({}),
    auth: z
      .object({
        /** environment variable holding the shared HMAC secret of the edge */
        hmac_secret_env: z.string().default('REALIGN_HMAC_SECRET'),
        /** environment variable holding comma-separated bearer tokens for direct use */
        bearer_tokens_env: z.string().default('REALIGN_API_TOKENS'),
        /** serve without any credential (local development only) */
        allow_unauthenticated: z.boolean().default(false),
        max_skew_seconds: z.number().positive().default(60),
      })
      .strict()
      .prefault({}),
    graph_cache: z.string().optional(),
    /** log prompt and completion text (off by default: logs carry ids and counts only) */
    log_prompts: z.boolean().default(false),
    /** how long SIGTERM waits for in-flight requests before cancelling them */
    shutdown_grace_ms: z.number().int().nonnegative().default(30_000),
  })
  .strict();

/** One served model, with paths resolved. */
export type ModelConfig = z.infer<typeof modelSchema>;
/** The whole server configuration. */
export type ServerConfig = z.infer<typeof configSchema>;

const MODEL_PATHS = ['model', 'aligned', 'reference'] as const;

/** Validates a parsed config; `baseDir` resolves relative paths. Errors name the field. */
export function parseServerConfig(raw: unknown, baseDir: string): ServerConfig {
  const r = configSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new Error(`models config: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  const ids = new Set<string>();
  for (const m of r.data.models) {
    if (ids.has(m.id)) throw new Error(`models config: model id "${m.id}" appears twice`);
    ids.add(m.id);
    for (const key of MODEL_PATHS) {
      const p = m[key];
      // model ids stay as they are, for loadServerConfig
      if (p !== undefined && !isAbsolute(p) && !isModelId(p, baseDir)) m[key] = resolve(baseDir, p);
    }
  }
  if (r.data.graph_cache && !isAbsolute(r.data.graph_cache)) r.data.graph_cache = resolve(baseDir, r.data.graph_cache);
  return r.data;
}

/** Reads and validates a models.json file. */
export function readServerConfig(file: string): ServerConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: cannot read models config (${(err as Error).message})`);
  }
  return parseServerConfig(raw, dirname(resolve(file)));
}

/**
 * Reads a models.json (readServerConfig) and turns the Hugging Face model ids among its model paths into snapshot
 * folders of the hub cache, downloading them when needed and allowed: once, before any engine starts.
 */
export async function loadServerConfig(
  file: string,
  hub: ResolveOptions = { onProgress: downloadReporter() },
): Promise<ServerConfig> {
  const config = readServerConfig(file);
  const baseDir = dirname(resolve(file));
  for (const [i, m] of config.models.entries()) {
    const ids = MODEL_PATHS.filter((key) => m[key] !== undefined && !isAbsolute(m[key]));
    if (m.revision !== undefined && ids.length === 0)
      throw new Error(
        `models config: models.${i}.revision: applies to Hugging Face model ids, but the model paths of "${m.id}" are folders`,
      );
    for (const key of ids) {
      try {
        m[key] = await resolveModelSource(m[key]!, { ...hub, baseDir, revision: m.revision });
      } catch (err) {
        throw new Error(`models config: models.${i}.${key}: ${(err as Error).message}`);
      }
    }
  }
  return config;
}

/** The engine source of a model config. */
export function modelSource(m: ModelConfig): ModelSource {
  const weights = m.weights ? { format: m.weights, blockSize: m.block_size, keepFloat: m.keep_float } : undefined;
  return m.mode === 'fusion'
    ? { mode: 'fusion', aligned: m.aligned, reference: m.reference, weights }
    : { mode: m.mode, model: m.model, inraAdapterLayers: m.inra_adapter_layers, weights };
}

/** The engine limits of a model config. */
export function engineLimits(m: ModelConfig): EngineLimits {
  return {
    maxBatch: m.max_batch,
    maxKvTokens: m.kv_budget_tokens,
    maxQueue: m.max_queue,
    maxPrefillTokens: m.max_prefill_tokens,
    decodeLoopSteps: m.decode_loop_steps,
    prefillChunkTokens: m.prefill_chunk_tokens,
    deviceSampling: m.device_sampling,
    cudaGraphs: m.cuda_graphs,
    drawThread: m.draw_thread,
  };
}
