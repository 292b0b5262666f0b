/**
 * What a logits job reads out of its one forward pass (the scheduler runs the pass and owns the rows): the blends
 * it asked for — its λ values, then its mixes — and, when it asks for branches, the aligned model (the first
 * adapter), the reference and each further adapter on its own; then the top entries of each at each position.
 */
import type { GraphManifest } from '../graph/model-graph.ts';
import { topLogprobs } from './logprobs.ts';
import type { Blend } from './mix.ts';
import type { LogitsJob, LogitsResult, TopEntry } from './protocol.ts';
import { needsFor, type BranchNeeds } from './rows.ts';

/** The blends a logits job reads out: its λ values, then its mixes. */
function logitsBlends(job: LogitsJob): Blend[] {
  return [...job.lambdas, ...(job.mixes ?? [])];
}

/** The branch rows a logits job needs (throws when the model cannot run its blends). */
export function logitsNeeds(manifest: GraphManifest, job: LogitsJob): BranchNeeds {
  return needsFor(manifest, logitsBlends(job), job.includeBranches);
}

/** Σ λ_i of a mix (what a logits blend of a mix reports as its λ: the weight off the reference). */
function mixSum(mix: Readonly<Record<string, number>>): number {
  return Object.values(mix).reduce((a, b) => a + b, 0);
}

/** A logits job's rows, the blends its pass computes (one logits block each, in order), and how they are read. */
export interface LogitsReadout {
  needs: BranchNeeds;
  lambdas: Blend[];
  /** The job's answer from the pass's logits ([blend][position][vocab]; `P` positions of `V` logits each). */
  result(logits: Float32Array, P: number, V: number): LogitsResult;
}

export function logitsReadout(manifest: GraphManifest, job: LogitsJob): LogitsReadout {
  const blends = logitsBlends(job);
  const names = manifest.adapters?.map((a) => a.name) ?? [];
  // branches read out after the blends: aligned (the first adapter) and reference, then each further adapter
  const branchLambdas: Blend[] =
    job.includeBranches && manifest.mode !== 'single' ? [1, 0, ...names.slice(1).map((n) => ({ [n]: 1 }))] : [];
  return {
    needs: needsFor(manifest, blends, job.includeBranches),
    lambdas: [...blends, ...branchLambdas],
    result(logits, P, V) {
      const read = (k: number): TopEntry[][] =>
        Array.from({ length: P }, (_, p) => topLogprobs(logits.subarray((k * P + p) * V, (k * P + p + 1) * V), job.topLogprobs));
      const positions =
        job.positions === 'all' ? Array.from({ length: job.inputIds.length }, (_, i) => i) : [job.inputIds.length - 1];
      const result: LogitsResult = {
        positions,
        blends: blends.map((b, k) =>
          typeof b === 'number' ? { lambda: b, top: read(k) } : { lambda: mixSum(b), mix: b, top: read(k) },
        ),
        forwardPasses: 1,
      };
      if (branchLambdas.length > 0) {
        const at = blends.length;
        result.branches = { aligned: read(at), reference: read(at + 1) };
        if (names.length > 0)
          result.branches.adapters = Object.fromEntries(
            names.map((n, i) => [n, i === 0 ? result.branches!.aligned : read(at + 1 + i)]),
          );
      }
      return result;
    },
  };
}
