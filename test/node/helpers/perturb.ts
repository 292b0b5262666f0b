/** Copies a checkpoint with some tensors changed (e.g. a trained-looking adapter). */
export { perturbCheckpoint } from '../../../gpu-backend/src/checkpoint/synthetic.ts';
