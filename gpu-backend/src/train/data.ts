/**
 * Training data: JSONL files of prompt/response pairs, tokenized the way the served model will see them (the
 * prompt through the chat template with its generation prompt, the response as the model would write it, then
 * the end-of-turn token).
 *
 * Each line is one of
 *   {"prompt": "...", "response": "...", "system"?: "..."}
 *   {"messages": [{"role": "user", "content": "..."}, ..., {"role": "assistant", "content": "..."}]}
 */
import { readFileSync } from 'node:fs';
import type { ChatMessage, TextTokenizer } from '../text/tokenizer.ts';

/** One tokenized example: the loss covers ids[promptLength..]. */
export interface TrainExample {
  ids: number[];
  promptLength: number;
}

/** A data file that cannot be used: the message names the file and line. */
export class DataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataError';
  }
}

/** The conversation of one line: what comes before the response, and the response. */
export interface ParsedExample {
  context: ChatMessage[];
  response: string;
}

/** Parses one JSONL record. */
export function parseRecord(raw: unknown, where: string): ParsedExample {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new DataError(`${where}: expected a JSON object with "prompt" and "response", or "messages"`);
  const r = raw as Record<string, unknown>;
  if (Array.isArray(r.messages)) {
    const msgs = r.messages as unknown[];
    const ok = msgs.every(
      (m) =>
        typeof m === 'object' &&
        m !== null &&
        typeof (m as ChatMessage).role === 'string' &&
        typeof (m as ChatMessage).content === 'string',
    );
    if (!ok || msgs.length < 2)
      throw new DataError(`${where}: "messages" must hold at least two {"role", "content"} objects of strings`);
    const last = msgs[msgs.length - 1] as ChatMessage;
    if (last.role !== 'assistant')
      throw new DataError(`${where}: the last message must be the assistant's response, got role "${last.role}"`);
    return {
      context: (msgs.slice(0, -1) as ChatMessage[]).map((m) => ({ role: m.role, content: m.content })),
      response: last.content,
    };
  }
  if (typeof r.prompt !== 'string' || typeof r.response !== 'string')
    throw new DataError(`${where}: "prompt" and "response" must be strings (or give "messages")`);
  const context: ChatMessage[] = typeof r.system === 'string' ? [{ role: 'system', content: r.system }] : [];
  context.push({ role: 'user', content: r.prompt });
  return { context, response: r.response };
}

/** Tokenizes one example; the response is cut to fit `maxLength` tokens in all. */
export function tokenizeExample(
  tok: TextTokenizer,
  ex: ParsedExample,
  eos: number,
  maxLength: number,
  where: string,
): TrainExample {
  const prompt = tok.hasChatTemplate
    ? tok.encodeChat(ex.context, { addGenerationPrompt: true })
    : tok.encode(ex.context.map((m) => m.content).join('\n'));
  const response = [...tok.encode(ex.response, { addSpecialTokens: false }), eos];
  if (prompt.length + 1 > maxLength)
    throw new DataError(
      `${where}: the prompt has ${prompt.length} tokens, which leaves no room for a response within --max-length ${maxLength}`,
    );
  const ids = [...prompt, ...response].slice(0, maxLength);
  return { ids, promptLength: prompt.length };
}

/** Reads and tokenizes a JSONL file (blank lines are skipped). */
export function loadDataset(file: string, tok: TextTokenizer, opts: { eos: number; maxLength: number }): TrainExample[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new DataError(`cannot read --data ${file}: ${(err as Error).message}`);
  }
  const out: TrainExample[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `${file}:${i + 1}`;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch (err) {
      throw new DataError(`${where}: not valid JSON (${(err as Error).message})`);
    }
    out.push(tokenizeExample(tok, parseRecord(raw, where), opts.eos, opts.maxLength, where));
  });
  if (out.length === 0) throw new DataError(`${file}: no examples (expected one JSON object per line)`);
  return out;
}
