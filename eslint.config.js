import tseslint from 'typescript-eslint';

/** Import boundaries from DESIGN.md: worker → shared ← gpu-backend; only gpu-backend/src/ort imports onnxruntime-node and koffi. */
const noBackend = {
  group: ['**/gpu-backend/**', 'onnxruntime-node', 'koffi'],
  message: 'worker/ must not import gpu-backend/ (use shared/).',
};
const noWorker = {
  group: ['**/worker/**', 'hono/cloudflare-workers', 'cloudflare:*'],
  message: 'gpu-backend/ must not import worker/ (use shared/).',
};
const noRuntime = {
  group: ['node:*', 'onnxruntime-node', 'koffi', '**/worker/**', '**/gpu-backend/**'],
  message: 'shared/ holds plain TypeScript usable by both halves: no Node APIs, no runtime-specific imports.',
};

export default tseslint.config(
  {
    ignores: [
      'node_modules/**',
      '.wrangler/**',
      '.realign/**',
      'bench/results/**',
      'worker-configuration.d.ts',
      'test-artifacts/**',
      '.gpu*/**',
      'scratch/**',
      'worker/src/playground/generated/**',
    ],
  },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  { files: ['worker/**'], rules: { 'no-restricted-imports': ['error', { patterns: [noBackend] }] } },
  { files: ['gpu-backend/**'], rules: { 'no-restricted-imports': ['error', { patterns: [noWorker] }] } },
  {
    files: ['gpu-backend/**'],
    ignores: ['gpu-backend/src/ort/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            noWorker,
            {
              group: ['onnxruntime-node', 'koffi'],
              message: 'Only gpu-backend/src/ort/ imports onnxruntime-node or koffi (the ONNX Runtime binding).',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['gpu-backend/src/checkpoint/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            noWorker,
            {
              group: ['onnxruntime-node', 'koffi', '**/text/**', '**/make/**'],
              message: 'checkpoint/ is checkpoint I/O only: making checkpoints (and their tokenizers) lives in make/.',
            },
          ],
        },
      ],
    },
  },
  {
    // the request path stays in small pieces (issue 16): no file over 300 lines, no function over 60
    files: ['gpu-backend/src/server/**/*.ts', 'worker/src/pipeline/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'max-lines': ['error', { max: 300 }],
      'max-lines-per-function': ['error', { max: 60 }],
    },
  },
  { files: ['shared/**'], rules: { 'no-restricted-imports': ['error', { patterns: [noRuntime] }] } },
);
