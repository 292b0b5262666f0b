/** The /v1/logits answer (shared/src/responses.ts LogitsResponse) written as JSON one position at a time. */
import type { LogitsResponse, PositionLogprobs } from '../../../../shared/src/responses.ts';
import type { LogitsResult, TopEntry } from '../../engine/protocol.ts';
import type { TokenTexts } from '../../text/token-table.ts';
import type { PreparedLogits } from '../prepare/logits.ts';
import type { ServedModel } from '../registry.ts';
import { completionId } from './format.ts';
import { jsonArrayPieces } from './json-stream.ts';

function usageOf(model: ServedModel, prep: PreparedLogits): LogitsResponse['usage'] {
  const { ids, lambdas, job } = prep;
  const branchTokens = (on: boolean) => ({ prompt_tokens: on ? ids.length : 0, completion_tokens: 0 });
  const needsAligned = job.includeBranches || lambdas.some((l) => l !== 0);
  const needsReference = model.config.mode !== 'single' && (job.includeBranches || lambdas.some((l) => l !== 1));
  return {
    prompt_tokens: ids.length,
    completion_tokens: 0,
    total_tokens: ids.length,
    realign: { lambda: lambdas, branches: { aligned: branchTokens(needsAligned), reference: branchTokens(needsReference) } },
  };
}

/** The LogitsResponse as JSON text pieces (an answer of max_logits_entries is megabytes). */
export function* logitsPieces(model: ServedModel, prep: PreparedLogits, result: LogitsResult): Generator<string> {
  const tok: TokenTexts = model.tokenizer;
  const positions = result.positions;
  const wire = (tops: TopEntry[][]) =>
    jsonArrayPieces(tops.keys(), (k): PositionLogprobs => ({
      position: positions[k],
      top_logprobs: tops[k].map((t) => ({ token_id: t.token, token: tok.tokenString(t.token), logprob: t.logprob })),
    }));
  const head: Omit<LogitsResponse, 'results' | 'branches' | 'usage'> = {
    id: completionId('logits'),
    object: 'logits',
    created: Math.floor(Date.now() / 1000),
    model: model.config.id,
    lambdas: prep.lambdas,
    input_ids: prep.ids,
    positions: prep.job.positions,
  };
  yield JSON.stringify(head).slice(0, -1) + ',"results":[';
  for (const [i, b] of result.blends.entries()) {
    const mix = b.mix ? `"mix":${JSON.stringify(b.mix)},` : '';
    yield `${i === 0 ? '' : ','}{"lambda":${JSON.stringify(b.lambda)},${mix}"positions":`;
    yield* wire(b.top);
    yield '}';
  }
  yield ']';
  if (result.branches) {
    yield ',"branches":{"aligned":';
    yield* wire(result.branches.aligned);
    yield ',"reference":';
    yield* wire(result.branches.reference);
    if (result.branches.adapters) {
      yield ',"adapters":{';
      for (const [i, [name, tops]] of Object.entries(result.branches.adapters).entries()) {
        yield `${i === 0 ? '' : ','}${JSON.stringify(name)}:`;
        yield* wire(tops);
      }
      yield '}';
    }
    yield '}';
  }
  yield `,"usage":${JSON.stringify(usageOf(model, prep))}}`;
}
