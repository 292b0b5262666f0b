/**
 * A model's tokenizer on its own thread: prompts are encoded and chat templates rendered there, off the server's
 * event loop (a 1 MB prompt takes the better part of a second to encode). Requests are answered in order; the
 * counters say how much work was asked of it (tests and metrics read them).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { TokenTable } from './token-table.ts';
import type { TokenizeReply, TokenizeRequest, TokenizerFiles, TokenizerReady } from './tokenizer-protocol.ts';
import { TokenizerError, type ChatMessage, type ChatTemplateOptions } from './tokenizer.ts';

/** A rendered chat over the byte bound it was given; `bytes` is its size. */
export class PromptTooLongError extends Error {
  constructor(readonly bytes: number) {
    super(`the rendered chat is ${bytes} bytes`);
    this.name = 'PromptTooLongError';
  }
}

/** Work the thread was asked for. */
export interface TokenizerThreadStats {
  /** encode and chat requests answered */
  calls: number;
  /** UTF-8 bytes of text it tokenized (a chat refused before tokenizing counts none) */
  bytesTokenized: number;
}

type Pending = { resolve: (ids: number[]) => void; reject: (err: Error) => void };

/** The tokenizer thread of one model. */
export class TokenizerThread {
  readonly stats: TokenizerThreadStats = { calls: 0, bytesTokenized: 0 };
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure: Error | null = null;

  private constructor(
    private readonly worker: Worker,
    /** the tokenizer's token table, built by the thread when it loaded the tokenizer (shared memory) */
    readonly table: TokenTable,
  ) {
    worker.on('message', (m: TokenizeReply) => this.onReply(m));
    worker.on('error', (err) => this.failAll(err));
    worker.once('exit', () => this.failAll(new Error('the tokenizer thread exited')));
  }

  /** Starts the thread and waits until it has loaded the tokenizer (the only parse of tokenizer.json). */
  static async start(files: TokenizerFiles): Promise<TokenizerThread> {
    const ts = fileURLToPath(import.meta.url).endsWith('.ts');
    const entry = new URL(ts ? './tokenizer-worker-bootstrap.mjs' : './tokenizer-worker.js', import.meta.url);
    if (!existsSync(entry)) throw new Error(`tokenizer worker entry not found at ${fileURLToPath(entry)}`);
    const worker = new Worker(entry, { workerData: files });
    const ready = await new Promise<TokenizerReady>((resolve, reject) => {
      const onExit = (code: number) => reject(new Error(`tokenizer thread exited (${code}) before it was ready`));
      worker.once('message', (m: TokenizerReady) => {
        worker.off('error', reject);
        worker.off('exit', onExit);
        resolve(m);
      });
      worker.once('error', reject);
      worker.once('exit', onExit);
    });
    return new TokenizerThread(worker, new TokenTable(ready.table));
  }

  /** Token ids of `text`. */
  encode(text: string, { addSpecialTokens = true }: { addSpecialTokens?: boolean } = {}): Promise<number[]> {
    return this.ask({ id: 0, op: 'encode', text, addSpecialTokens });
  }

  /** Token ids of the rendered chat; a rendering longer than `maxBytes` rejects with {@link PromptTooLongError}. */
  encodeChat(
    messages: readonly ChatMessage[],
    options: ChatTemplateOptions = {},
    maxBytes: number | null = null,
  ): Promise<number[]> {
    return this.ask({ id: 0, op: 'chat', messages: messages.map((m) => ({ ...m })), options, maxBytes });
  }

  /** Stops the thread (it keeps the process alive until then); pending requests fail. */
  async close(): Promise<void> {
    await this.worker.terminate();
  }

  private ask(req: TokenizeRequest): Promise<number[]> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<number[]>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...req, id });
    });
  }

  private onReply(m: TokenizeReply): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    this.stats.calls++;
    if (m.ok) {
      this.stats.bytesTokenized += m.bytes;
      p.resolve(Array.from(m.ids));
    } else if (m.kind === 'too_long') {
      p.reject(new PromptTooLongError(m.bytes));
    } else {
      this.stats.bytesTokenized += m.bytes;
      p.reject(m.kind === 'tokenizer' ? new TokenizerError(m.message) : new Error(m.message));
    }
  }

  private failAll(err: Error): void {
    this.failure ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}
