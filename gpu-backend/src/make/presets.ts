import type { Architecture } from '../checkpoint/config.ts';

/** A model shape realign can synthesise. `tokenizer` says where its tokenizer files come from. */
export interface ModelPreset {
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  vocabSize: number;
  maxPositions: number;
  ropeTheta: number;
  rmsNormEps: number;
  tieWordEmbeddings: boolean;
  tokenizer: 'tiny' | 'qwen' | 'llama3';
  /** Llama 3 rope scaling, for the llama-3.2 shape */
  llama3Rope?: { factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number };
  /** fixed architecture for real shapes; tiny and small take --arch */
  architecture?: Architecture;
}

/** Presets by name: `tiny` for tests, `small` for CPU benchmarks, and real model shapes (random weights). */
export const PRESETS: Record<string, ModelPreset> = {
  tiny: {
    hiddenSize: 64,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 16,
    intermediateSize: 160,
    vocabSize: 512,
    maxPositions: 2048,
    ropeTheta: 10000,
    rmsNormEps: 1e-6,
    tieWordEmbeddings: false,
    tokenizer: 'tiny',
  },
  small: {
    hiddenSize: 512,
    numLayers: 8,
    numHeads: 8,
    numKvHeads: 2,
    headDim: 64,
    intermediateSize: 2048,
    vocabSize: 32000,
    maxPositions: 4096,
    ropeTheta: 10000,
    rmsNormEps: 1e-6,
    tieWordEmbeddings: true,
    tokenizer: 'tiny',
  },
  'qwen2.5-0.5b': {
    architecture: 'qwen2',
    hiddenSize: 896,
    numLayers: 24,
    numHeads: 14,
    numKvHeads: 2,
    headDim: 64,
    intermediateSize: 4864,
    vocabSize: 151936,
    maxPositions: 32768,
    ropeTheta: 1000000,
    rmsNormEps: 1e-6,
    tieWordEmbeddings: true,
    tokenizer: 'qwen',
  },
  'r1-distill-qwen-1.5b': {
    architecture: 'qwen2',
    hiddenSize: 1536,
    numLayers: 28,
    numHeads: 12,
    numKvHeads: 2,
    headDim: 128,
    intermediateSize: 8960,
    vocabSize: 151936,
    maxPositions: 131072,
    ropeTheta: 10000,
    rmsNormEps: 1e-6,
    tieWordEmbeddings: false,
    tokenizer: 'qwen',
  },
  'r1-distill-qwen-7b': {
    architecture: 'qwen2',
    hiddenSize: 3584,
    numLayers: 28,
    numHeads: 28,
    numKvHeads: 4,
    headDim: 128,
    intermediateSize: 18944,
    vocabSize: 152064,
    maxPositions: 131072,
    ropeTheta: 10000,
    rmsNormEps: 1e-6,
    tieWordEmbeddings: false,
    tokenizer: 'qwen',
  },
  'llama-3.2-1b': {
    architecture: 'llama',
    hiddenSize: 2048,
    numLayers: 16,
    numHeads: 32,
    numKvHeads: 8,
    headDim: 64,
    intermediateSize: 8192,
    vocabSize: 128256,
    maxPositions: 131072,
    ropeTheta: 500000,
    rmsNormEps: 1e-5,
    tieWordEmbeddings: true,
    tokenizer: 'llama3',
    llama3Rope: { factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 },
  },
};
