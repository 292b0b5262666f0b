/**
 * Where realign keeps what it can rebuild (built graphs): the user's cache directory, never the folder the user
 * happens to stand in. `REALIGN_CACHE` moves all of it; `REALIGN_GRAPH_CACHE` (or a models.json `graph_cache`)
 * moves the graphs alone.
 */
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';

/** realign's cache root: `$REALIGN_CACHE`, else `$XDG_CACHE_HOME/realign`, else `~/.cache/realign`. */
export function realignCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.REALIGN_CACHE) return resolve(env.REALIGN_CACHE);
  // the XDG base-directory spec ignores a relative XDG_CACHE_HOME
  const xdg = env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(xdg, 'realign');
}

/** The folder of built graphs: `$REALIGN_GRAPH_CACHE`, else `graphs/` under realign's cache root. */
export function graphCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.REALIGN_GRAPH_CACHE ? resolve(env.REALIGN_GRAPH_CACHE) : join(realignCacheDir(env), 'graphs');
}
