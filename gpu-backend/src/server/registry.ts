/**
 * The served models: one engine each, loaded in the background. Ready means every model has settled — loaded or
 * definitively failed (a load is not retried) — and at least one serves; a failed model answers 503 on its own. A
 * loaded model whose engine later died (its worker thread failed or exited; it is not restarted) counts as failed
 * from then on: in readiness, in `status()` (with the reason) and in `get()`.
 */
import { notFound, serviceUnavailable, type ApiError } from '../../../shared/src/errors.ts';
import { tokenizerFiles } from '../checkpoint/checkpoint.ts';
import { Engine } from '../engine/engine.ts';
import type { TokenTable } from '../text/token-table.ts';
import { TokenizerThread } from '../text/tokenizer-thread.ts';
import { engineLimits, modelSource, type ModelConfig, type ServerConfig } from './config.ts';

/** A model ready to serve. */
export interface ServedModel {
  config: ModelConfig;
  engine: Engine;
  /**
   * token texts, the chat-template flag and the prompt byte bound (on the event loop): the token table the tokenizer
   * thread built, shared with the engine thread — tokenizer.json is parsed once, on the tokenizer thread
   */
  tokenizer: TokenTable;
  /** encoding and chat templates (on the model's tokenizer thread) */
  encoder: TokenizerThread;
  created: number;
}

/** Where the registry reports loads (a pino logger fits). */
export interface RegistryLog {
  info(fields: Record<string, unknown>, msg: string): void;
  error(fields: Record<string, unknown>, msg: string): void;
}

type Slot = { state: 'loading' } | { state: 'ready'; model: ServedModel } | { state: 'failed'; error: string };

function slotStatus(s: Slot): string {
  if (s.state === 'failed') return `failed: ${s.error}`;
  if (s.state === 'ready' && s.model.engine.failure !== null) return `failed: engine gone: ${s.model.engine.failure}`;
  return s.state;
}

/** Loads every configured model and hands them out by id. */
export class ModelRegistry {
  private readonly slots = new Map<string, Slot>();
  /** resolves when every model has loaded or failed */
  readonly loaded: Promise<void>;

  /** `onReady` sees each model before it is handed out (e.g. to hook its engine's step timings into metrics). */
  constructor(
    private readonly config: ServerConfig,
    log: RegistryLog,
    onReady: (model: ServedModel) => void = () => {},
  ) {
    for (const m of config.models) this.slots.set(m.id, { state: 'loading' });
    this.loaded = Promise.all(
      config.models.map(async (m) => {
        const started = Date.now();
        try {
          const model = await this.load(m);
          onReady(model);
          this.slots.set(m.id, { state: 'ready', model });
          log.info(
            {
              model: m.id,
              mode: m.mode,
              device: model.engine.info.device,
              deviceReason: model.engine.info.deviceReason,
              ms: Date.now() - started,
            },
            'model loaded',
          );
        } catch (err) {
          this.slots.set(m.id, { state: 'failed', error: (err as Error).message });
          log.error({ model: m.id, error: (err as Error).message }, 'model failed to load');
        }
      }),
    ).then(() => undefined);
  }

  /** Whether every model has loaded or failed, and at least one serves (loaded, and its engine alive). */
  get ready(): boolean {
    const slots = [...this.slots.values()];
    return slots.every((s) => s.state !== 'loading') && slots.some((s) => s.state === 'ready' && s.model.engine.failure === null);
  }

  /** Per model: loading, ready or failed (with the reason: its load's, or its engine's when that died after loading). */
  status(): Record<string, string> {
    return Object.fromEntries([...this.slots].map(([id, s]) => [id, slotStatus(s)]));
  }

  /** The ready models. */
  models(): ServedModel[] {
    return [...this.slots.values()].flatMap((s) => (s.state === 'ready' ? [s.model] : []));
  }

  /** A model by id, or the error to answer with (404 unknown, 503 still loading or failed). */
  get(id: string): ServedModel | ApiError {
    const slot = this.slots.get(id);
    // the backend's other models are not the caller's business: name only the one asked for
    if (!slot) return notFound(`model "${id}" is not served by this backend; check the model id`, 'model_not_found', 'model');
    if (slot.state === 'loading') return serviceUnavailable(`model "${id}" is still loading; retry shortly`, 5, 'model_loading');
    if (slot.state === 'failed')
      return serviceUnavailable(`model "${id}" failed to load: ${slot.error}`, undefined, 'model_unavailable');
    const gone = slot.model.engine.failure;
    if (gone !== null) return serviceUnavailable(`the engine of model "${id}" is gone: ${gone}`, 5, 'engine_unavailable');
    return slot.model;
  }

  /** Stops every engine (running sequences end as cancelled). */
  async shutdown(): Promise<void> {
    await this.loaded;
    await Promise.all(
      this.models().map(async (m) => {
        await m.engine.shutdown();
        await m.encoder.close();
      }),
    );
  }

  private async load(m: ModelConfig): Promise<ServedModel> {
    const source = modelSource(m);
    // the engine's thread opens and checks the checkpoints, once; this thread needs only their tokenizer files
    const dir = source.mode === 'fusion' ? source.reference : source.model;
    if (dir === undefined) throw new Error(`model "${m.id}": no checkpoint folder configured`);
    const main = tokenizerFiles(dir);
    if (!main.tokenizerFile) throw new Error(`${dir}: no tokenizer.json; the server needs the tokenizer`);
    // the one parse of tokenizer.json: the thread returns the token table this thread and the engine's use
    const encoder = await TokenizerThread.start({
      tokenizerFile: main.tokenizerFile,
      tokenizerConfigFile: main.tokenizerConfigFile,
    });
    const tokenizer = encoder.table;
    let engine: Engine;
    try {
      engine = await Engine.start({
        source,
        device: m.device,
        maxContext: m.max_context,
        graphCache: this.config.graph_cache,
        threads: m.threads,
        limits: engineLimits(m),
        tokens: tokenizer.data,
      });
    } catch (err) {
      await encoder.close();
      throw err;
    }
    return { config: m, engine, tokenizer, encoder, created: Math.floor(Date.now() / 1000) };
  }
}
