/**
 * The command line as a newcomer meets it (issue 15 item 4): --help on every command with descriptions and
 * defaults, --version, exit status 2 for every usage error, negative numbers as option values, init-model's
 * optional --arch, generate's stated defaults and its chat template.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { initModel } from '../../../gpu-backend/src/make/init-model.ts';
import { cleanupTempDirs, tempDir, testSeed } from '../helpers/models.ts';
import { cli } from './run-cli.ts';

const ROOT = resolve(import.meta.dirname, '../../..');
const TOY = join(ROOT, 'models/toy-inra');
const COMMANDS = ['init-model', 'expand', 'logits', 'generate', 'build-graph', 'serve', 'train-inra', 'train-trra'];
afterAll(cleanupTempDirs);

describe('realign --help, --version and usage errors', () => {
  const work = tempDir();
  const run = (args: string[]) => cli(args, { cwd: work, cache: join(work, 'cache') });

  it.each(COMMANDS)('realign %s --help describes every option, shows the defaults and exits 0', async (name) => {
    const r = await run([name, '--help']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^Usage: realign ${name} `));
    // every option line carries a description (a flag alone on its line has none)
    const options = r.stdout
      .slice(r.stdout.indexOf('Options:'))
      .split('\n')
      .slice(1)
      .filter((l) => /^ {2}-/.test(l));
    expect(options.length).toBeGreaterThan(1);
    for (const line of options) expect(line.trim(), `option without a description in ${name} --help`).toMatch(/^\S.*\s{2,}\S/);
    if (['logits', 'generate', 'train-inra', 'train-trra'].includes(name))
      expect(r.stdout.replace(/\s+/g, ' ')).toMatch(/--device <device> .*default: "auto"/);
  });

  it('states the defaults that matter: λ and the chat template of generate, --arch of init-model (optional)', async () => {
    const gen = (await run(['generate', '--help'])).stdout.replace(/\s+/g, ' ');
    expect(gen).toMatch(/--lambda <λ> .*\(default: 1\)/);
    expect(gen).toMatch(/--max-tokens <n> .*\(default: 128\)/);
    expect(gen).toMatch(/--temperature <t> .*\(default: 0\)/);
    expect(gen).toMatch(/--chat .*default when the tokenizer has one/);
    expect(gen).toMatch(/--no-chat/);
    expect(gen).toMatch(/--raw/);
    const init = (await run(['init-model', '--help'])).stdout.replace(/\s+/g, ' ');
    expect(init).toMatch(/--arch <arch> .*default: "qwen2"/);
    expect((await run(['serve', '--help'])).stdout.replace(/\s+/g, ' ')).toMatch(/--port <port> .*\(default: 8000\)/);
  });

  it('--version prints the package version; `realign help <command>` and `realign --help` answer', async () => {
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    for (const flag of ['--version', '-V']) {
      const r = await run([flag]);
      expect(r.code).toBe(0);
      expect(r.stdout.trim()).toBe(version);
    }
    const help = await run(['help', 'logits']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: realign logits/);
    const top = await run(['--help']);
    expect(top.code).toBe(0);
    for (const name of COMMANDS) expect(top.stdout).toContain(name);
  });

  it('every usage mistake exits with 2, names the problem and points to --help; no stack trace', async () => {
    const cases: [string[], RegExp][] = [
      [['generate', '--model', TOY, '--prompt', 'x', '--frobnicate'], /unknown option '--frobnicate'/],
      [['generate', '--model', TOY], /required option '--prompt <text>'/],
      [['generate', '--model', TOY, '--prompt', 'x', '--lambda', 'NaN'], /--lambda.*expected a finite number, got "NaN"/],
      [['generate', '--model', TOY, '--prompt', 'x', '--top-p', '0'], /--top-p.*\(0, 1\]/],
      [['generate', '--model', TOY, '--prompt', 'x', '--device', 'tpu'], /--device.*Allowed choices are auto, cpu, cuda/],
      [['logits', '--model', TOY, '--prompt', 'x', '--top', '-3'], /--top.*positive integer/],
      [['logits', '--prompt', 'x'], /--model <dir> is required/],
      [['logits', '--model', join(work, 'nowhere'), '--prompt', 'x'], /--model .*nowhere: no such folder/],
      [['init-model', join(work, 'x'), '--preset', 'huge', '--seed', '1'], /--preset.*Allowed choices are tiny/],
      [['init-model', join(work, 'x'), '--preset', 'tiny'], /required option '--seed <n>'/],
      [['serve'], /required option '--config <file>'/],
      [['serve', '--config', 'm.json', '--port', '70000'], /--port.*0–65535/],
      [['frobnicate'], /unknown command 'frobnicate'/],
      [[], /Usage: realign/],
    ];
    for (const [args, message] of cases) {
      const r = await run(args);
      expect(r.code, `realign ${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr, `realign ${args.join(' ')}`).toMatch(message);
      if (args.length > 0) expect(r.stderr).toMatch(/--help/);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  }, 120_000);

  it('init-model without --arch makes a checkpoint (qwen2, the shown default)', async () => {
    const out = join(work, 'no-arch');
    const r = await run(['init-model', out, '--preset', 'tiny', '--seed', String(testSeed())]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).model_type).toBe('qwen2');
  });
});

describe('negative λ and generate defaults', () => {
  const work = tempDir();
  const cache = join(work, 'cache');
  const run = (args: string[]) => cli(args, { cwd: work, cache });

  it('--lambda -0.5 is a value (logits: a list with negatives; generate: one negative λ), not an unknown option', async () => {
    const seed = testSeed();
    const model = join(work, 'm');
    initModel(model, { arch: 'qwen2', preset: 'tiny', seed, dtype: 'F32' });
    const l = await run(['logits', '--model', model, '--prompt', 'abc', '--lambda', '-0.5,1', '--device', 'cpu']);
    expect(l.code, l.stderr).toBe(0);
    expect((JSON.parse(l.stdout) as { results: { lambda: number }[] }).results.map((x) => x.lambda)).toEqual([-0.5, 1]);
    const g = await run([
      'generate',
      '--model',
      TOY,
      '--prompt',
      '708+465',
      '--lambda',
      '-0.5',
      '--max-tokens',
      '4',
      '--device',
      'cpu',
    ]);
    expect(g.code, g.stderr).toBe(0);
    expect(g.stderr).toMatch(/λ = -0\.5,/);
    const eq = await run([
      'generate',
      '--model',
      TOY,
      '--prompt',
      '708+465',
      '--lambda=-0.5',
      '--max-tokens',
      '4',
      '--device',
      'cpu',
    ]);
    expect(eq.stdout).toBe(g.stdout);
  }, 120_000);

  it('generate says its defaults and wraps the prompt in the chat template when the tokenizer has one; --no-chat and --raw send raw text', async () => {
    const base = ['generate', '--model', TOY, '--prompt', '708+465', '--max-tokens', '60', '--device', 'cpu'];
    const byDefault = await run(base);
    expect(byDefault.code, byDefault.stderr).toBe(0);
    expect(byDefault.stderr).toMatch(/λ = 1 \(default\), chat template, temperature 0 \(default\), max 60 tokens$/m);
    const chat = await run([...base, '--chat']);
    expect(chat.stdout).toBe(byDefault.stdout);
    // the toy model was trained on chat-formatted additions: under its template, greedy λ = 1 answers correctly
    expect(byDefault.stdout).toMatch(/answer 1173/);
    for (const flag of ['--no-chat', '--raw']) {
      const raw = await run([...base, flag]);
      expect(raw.code, raw.stderr).toBe(0);
      expect(raw.stderr).toMatch(/raw prompt/);
      expect(raw.stdout).not.toBe(byDefault.stdout);
    }
  }, 120_000);
});
