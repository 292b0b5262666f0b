/**
 * `continue_final_message`: the chat text ends inside the last (assistant) message, so the model's next token
 * continues that answer — checked against the real Qwen chat template and the toy model's own template, with the
 * full render (end-of-turn marker included) as the independent comparison.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { copyBundledTokenizer } from '../make/tiny-tokenizer.ts';
import { TextTokenizer, TokenizerError } from './tokenizer.ts';

const TOY = join(import.meta.dirname, '../../../models/toy-inra');

let qwenTok: TextTokenizer | undefined;

/** The real Qwen tokenizer, loaded once (a load takes seconds). */
function qwen(): TextTokenizer {
  if (qwenTok === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'realign-tok-'));
    copyBundledTokenizer('qwen', dir);
    qwenTok = TextTokenizer.load(join(dir, 'tokenizer.json'), join(dir, 'tokenizer_config.json'));
  }
  return qwenTok;
}

const messages = [
  { role: 'user' as const, content: '708+465' },
  { role: 'assistant' as const, content: '8+5=13 0+6+1=7 7+4=11 sum 1173.' },
];

describe('continuing the final assistant message', () => {
  it.each([
    ['the toy model', () => TextTokenizer.load(join(TOY, 'tokenizer.json'), join(TOY, 'tokenizer_config.json'))],
    ['Qwen', qwen],
  ])('%s: the text is the full render cut right after the answer so far', (_name, load) => {
    const tok = load();
    const full = tok.applyChatTemplate(messages, { addGenerationPrompt: false });
    const continued = tok.applyChatTemplate(messages, { continueFinalMessage: true });
    expect(continued.endsWith(messages[1].content)).toBe(true);
    expect(full.startsWith(continued)).toBe(true);
    // what was cut is only the template's end of the turn, never part of the answer
    expect(full.length).toBeGreaterThan(continued.length);
    expect(full.slice(continued.length)).not.toContain('sum');
    // and it starts like the generation prompt would: same user turn, same assistant header
    const asked = tok.applyChatTemplate(messages.slice(0, 1), { addGenerationPrompt: true });
    expect(continued.startsWith(asked)).toBe(true);
    expect(tok.encodeChat(messages, { continueFinalMessage: true })).toEqual(tok.encode(continued, { addSpecialTokens: false }));
  });

  it('refuses an empty final message (there is nothing to find in the render)', () => {
    const tok = qwen();
    expect(() =>
      tok.applyChatTemplate([messages[0], { role: 'assistant', content: '' }], { continueFinalMessage: true }),
    ).toThrow(TokenizerError);
  });
});
