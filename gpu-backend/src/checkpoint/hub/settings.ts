/** Where the hub and its cache are, and whether we may reach it: options first, then the hub's own variables. */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ModelSourceError } from './model-id.ts';

/** Options of a hub lookup; every field falls back to the variable the Hugging Face tools read. */
export interface HubOptions {
  /** `HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub` */
  cacheDir?: string;
  /** `HF_ENDPOINT`, else https://huggingface.co */
  endpoint?: string;
  /** `HF_TOKEN`, else the token file `huggingface-cli login` writes */
  token?: string;
  /** `HF_HUB_OFFLINE=1`: use the cache only */
  offline?: boolean;
}

/** The settings in force. */
export interface HubSettings {
  cacheDir: string;
  endpoint: string;
  token: string | undefined;
  offline: boolean;
}

const TRUE = new Set(['1', 'on', 'yes', 'true']);

function hfHome(env: NodeJS.ProcessEnv): string {
  return env.HF_HOME || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'huggingface');
}

/** The hub cache folder, as huggingface_hub finds it. */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE || join(hfHome(env), 'hub');
}

function token(opts: HubOptions, env: NodeJS.ProcessEnv): string | undefined {
  let value = opts.token;
  let source = 'the token option';
  if (value === undefined && (env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN)) {
    value = env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN;
    source = env.HF_TOKEN ? 'HF_TOKEN' : 'HUGGING_FACE_HUB_TOKEN';
  }
  if (value === undefined) {
    const file = env.HF_TOKEN_PATH || join(hfHome(env), 'token');
    if (existsSync(file)) {
      value = readFileSync(file, 'utf8');
      source = file;
    }
  }
  value = value?.trim();
  if (!value) return undefined;
  // @huggingface/hub refuses other tokens with a bare TypeError; say where this one came from
  if (!value.startsWith('hf_'))
    throw new ModelSourceError(
      `the Hugging Face token from ${source} does not start with "hf_"; use an access token from https://huggingface.co/settings/tokens`,
    );
  return value;
}

/** Resolves the settings from `opts` and the environment. */
export function hubSettings(opts: HubOptions = {}, env: NodeJS.ProcessEnv = process.env): HubSettings {
  return {
    cacheDir: opts.cacheDir ?? hubCacheDir(env),
    endpoint: (opts.endpoint ?? (env.HF_ENDPOINT || 'https://huggingface.co')).replace(/\/+$/, ''),
    token: token(opts, env),
    offline: opts.offline ?? TRUE.has((env.HF_HUB_OFFLINE ?? '').trim().toLowerCase()),
  };
}
