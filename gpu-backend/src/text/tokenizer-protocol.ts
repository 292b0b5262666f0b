/** Messages between the server and its tokenizer thread (tokenizer-thread.ts ↔ tokenizer-worker.ts). */
import type { TokenTableData } from './token-table.ts';
import type { ChatMessage, ChatTemplateOptions } from './tokenizer.ts';

/** What the tokenizer thread loads. */
export interface TokenizerFiles {
  tokenizerFile: string;
  tokenizerConfigFile: string | null;
}

/** The thread's first message, once it has loaded the tokenizer: the token table it built (shared memory). */
export interface TokenizerReady {
  ready: true;
  table: TokenTableData;
}

/** A request to the tokenizer thread. */
export type TokenizeRequest =
  | { id: number; op: 'encode'; text: string; addSpecialTokens: boolean }
  /** `maxBytes`: a rendered chat longer than this is refused (`too_long`) without being tokenized */
  | { id: number; op: 'chat'; messages: ChatMessage[]; options: ChatTemplateOptions; maxBytes: number | null };

/** Its answer: the ids (in a transferred buffer) and the UTF-8 bytes that were tokenized, or why not. */
export type TokenizeReply =
  | { id: number; ok: true; ids: Int32Array; bytes: number }
  | { id: number; ok: false; kind: 'tokenizer' | 'too_long' | 'internal'; message: string; bytes: number };
