import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { copyBundledTokenizer, writeTinyTokenizer } from '../make/tiny-tokenizer.ts';
import { SAMPLE_TEXTS } from './samples.ts';
import { TokenTable } from './token-table.ts';
import { TokenizerThread } from './tokenizer-thread.ts';
import { TextTokenizer } from './tokenizer.ts';

type Kind = 'tiny' | 'qwen' | 'llama3';

function files(kind: Kind): { tokenizerFile: string; tokenizerConfigFile: string } {
  const dir = mkdtempSync(join(tmpdir(), 'realign-table-'));
  if (kind === 'tiny') {
    writeTinyTokenizer(dir, { vocabSize: 512 });
    return { tokenizerFile: join(dir, 'tokenizer.json'), tokenizerConfigFile: join(dir, 'tokenizer_config.json') };
  }
  const info = copyBundledTokenizer(kind, dir);
  return { tokenizerFile: info.tokenizerJsonPath, tokenizerConfigFile: info.tokenizerConfigPath };
}

const loaded = new Map<Kind, { tok: TextTokenizer; table: TokenTable; files: ReturnType<typeof files> }>();

/** Each tokenizer is loaded once per file (a bundled one takes about a second). */
function load(kind: Kind): { tok: TextTokenizer; table: TokenTable; files: ReturnType<typeof files> } {
  let entry = loaded.get(kind);
  if (entry === undefined) {
    const f = files(kind);
    const tok = TextTokenizer.load(f.tokenizerFile, f.tokenizerConfigFile);
    entry = { tok, table: TokenTable.fromTokenizer(tok), files: f };
    loaded.set(kind, entry);
  }
  return entry;
}

/**
 * Ids worth decoding: random ids, the added and special tokens, pieces of multi-byte characters (an added token
 * between two pieces decides whether they join), whole-text tokens, and ids the tokenizer lacks.
 */
function idArbitrary(tok: TextTokenizer): fc.Arbitrary<number> {
  const added: number[] = [];
  for (let id = 0; id < tok.vocabSize; id++) if (tok.addedTokenContent(id) !== undefined || tok.isSpecial(id)) added.push(id);
  const text = tok.encode(SAMPLE_TEXTS.emoji + SAMPLE_TEXTS.cjk + SAMPLE_TEXTS.mixed, { addSpecialTokens: false });
  const pieces = text.filter((id) => tok.tokenString(id).startsWith('bytes:'));
  const unknown = [-1, tok.vocabSize, tok.vocabSize + 7];
  return fc.oneof(
    fc.integer({ min: 0, max: tok.vocabSize - 1 }),
    fc.constantFrom(...added),
    fc.constantFrom(...pieces),
    fc.constantFrom(...text),
    fc.constantFrom(...unknown),
  );
}

describe.each(['tiny', 'qwen', 'llama3'] as const)('the token table of the %s tokenizer', (kind) => {
  it("has the tokenizer's facts", () => {
    const { tok, table } = load(kind);
    expect(table.vocabSize).toBe(tok.vocabSize);
    expect(table.eosTokenIds).toEqual(tok.eosTokenIds);
    expect(table.bosTokenId).toBe(tok.bosTokenId);
    expect(table.hasChatTemplate).toBe(tok.hasChatTemplate);
    expect(table.maxBytesPerToken).toBe(tok.maxBytesPerToken);
    expect(table.byteLevelDecoder).toBe(true);
    expect(table.data.bytes.buffer).toBeInstanceOf(SharedArrayBuffer);
  });

  it('gives every id the bytes, text and specialness the tokenizer gives it', () => {
    const { tok, table } = load(kind);
    const bad: number[] = [];
    for (let id = -2; id < tok.vocabSize + 3; id++) {
      const same =
        table.tokenString(id) === tok.tokenString(id) &&
        table.isSpecial(id) === tok.isSpecial(id) &&
        table.tokenBytes(id).join() === tok.tokenBytes(id).join();
      if (!same) bad.push(id);
    }
    expect(bad).toEqual([]);
    // cached texts stay the same
    expect(table.tokenString(tok.vocabSize - 1)).toBe(tok.tokenString(tok.vocabSize - 1));
  });

  it('decodes id sequences as the tokenizer does, skipping specials or not (property)', () => {
    const { tok, table } = load(kind);
    fc.assert(
      fc.property(fc.array(idArbitrary(tok), { minLength: 0, maxLength: 30 }), fc.boolean(), (ids, skip) => {
        expect(table.decode(ids, { skipSpecialTokens: skip })).toBe(tok.decode(ids, { skipSpecialTokens: skip }));
      }),
      { numRuns: 400, seed: 5 },
    );
    const long = tok.encode(SAMPLE_TEXTS.mixed.repeat(40), { addSpecialTokens: false });
    expect(table.decode(long)).toBe(tok.decode(long));
  });
});

describe('a token table across threads', () => {
  const threads: TokenizerThread[] = [];
  afterAll(async () => {
    await Promise.all(threads.map((t) => t.close()));
  });

  it.each(['tiny', 'qwen'] as const)("the tokenizer thread's %s table (built there) decodes as the tokenizer", async (kind) => {
    const { tok, files: f } = load(kind);
    const thread = await TokenizerThread.start(f);
    threads.push(thread);
    const table = thread.table;
    expect(table.data.offsets.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(table.maxBytesPerToken).toBe(tok.maxBytesPerToken);
    fc.assert(
      fc.property(fc.array(idArbitrary(tok), { maxLength: 20 }), fc.boolean(), (ids, skip) => {
        expect(table.decode(ids, { skipSpecialTokens: skip })).toBe(tok.decode(ids, { skipSpecialTokens: skip }));
        for (const id of ids) expect(table.tokenString(id)).toBe(tok.tokenString(id));
      }),
      { numRuns: 100, seed: 9 },
    );
  });

  it('shares its memory with the thread it is sent to (no copy)', async () => {
    const { tok } = load('tiny');
    const table = TokenTable.fromTokenizer(tok);
    const at = table.data.offsets[0x41];
    // the other thread changes a byte of the table it received; this thread's table sees the change
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      workerData.bytes[${at}] = 0x42;
      parentPort.postMessage(workerData.bytes.buffer instanceof SharedArrayBuffer);`;
    const worker = new Worker(code, { eval: true, workerData: table.data });
    const shared = await new Promise((resolve, reject) => worker.once('message', resolve).once('error', reject));
    await worker.terminate();
    expect(shared).toBe(true);
    expect(table.tokenBytes(0x41)).toEqual([0x42]);
    expect(tok.tokenBytes(0x41)).toEqual([0x41]);
  });
});
