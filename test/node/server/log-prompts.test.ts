import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { startTestBackend } from '../helpers/backend.ts';
import { tinyInra } from '../helpers/engine.ts';
import { send } from '../helpers/http.ts';
import { cleanupTempDirs, testSeed } from '../helpers/models.ts';

afterAll(cleanupTempDirs);

describe('log_prompts', () => {
  it('when the operator turns it on, the "generation done" line carries the prompt and the completion', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
    const marker = `VISIBLE-${testSeed().toString(36)}`;
    const backend = await startTestBackend(
      [{ id: 'inra', mode: 'inra', model: tinyInra(testSeed()), default_lambda: 0.5 }],
      { log_prompts: true },
      logger,
    );
    try {
      const res = await send(backend.url, '/v1/completions', { model: 'inra', prompt: marker, max_tokens: 3, temperature: 0 });
      const body = (await res.json()) as { choices: { text: string }[] };
      const done = lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'generation done');
      expect(done.prompt).toBe(marker);
      expect(done.completions).toEqual([body.choices[0].text]);
    } finally {
      await backend.stop();
    }
  });
});
