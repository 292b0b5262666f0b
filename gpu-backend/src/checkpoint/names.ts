import type { ModelConfig } from './config.ts';

/** Hugging Face tensor names of one decoder layer. */
export function layerTensorNames(i: number) {
  const p = `model.layers.${i}`;
  return {
    inputNorm: `${p}.input_layernorm.weight`,
    q: `${p}.self_attn.q_proj.weight`,
    k: `${p}.self_attn.k_proj.weight`,
    v: `${p}.self_attn.v_proj.weight`,
    qBias: `${p}.self_attn.q_proj.bias`,
    kBias: `${p}.self_attn.k_proj.bias`,
    vBias: `${p}.self_attn.v_proj.bias`,
    o: `${p}.self_attn.o_proj.weight`,
    oBias: `${p}.self_attn.o_proj.bias`,
    postNorm: `${p}.post_attention_layernorm.weight`,
    gate: `${p}.mlp.gate_proj.weight`,
    up: `${p}.mlp.up_proj.weight`,
    down: `${p}.mlp.down_proj.weight`,
    gateBias: `${p}.mlp.gate_proj.bias`,
    upBias: `${p}.mlp.up_proj.bias`,
    downBias: `${p}.mlp.down_proj.bias`,
  };
}

export const EMBED = 'model.embed_tokens.weight';
export const FINAL_NORM = 'model.norm.weight';
export const LM_HEAD = 'lm_head.weight';

/** Every tensor a checkpoint of this config holds, with its shape, in a stable order. */
export function expectedTensors(cfg: ModelConfig): { name: string; shape: number[] }[] {
  const D = cfg.hiddenSize;
  const qDim = cfg.numHeads * cfg.headDim;
  const kvDim = cfg.numKvHeads * cfg.headDim;
  const I = cfg.intermediateSize;
  const out: { name: string; shape: number[] }[] = [{ name: EMBED, shape: [cfg.vocabSize, D] }];
  for (let i = 0; i < cfg.numLayers; i++) {
    const n = layerTensorNames(i);
    out.push({ name: n.inputNorm, shape: [D] });
    out.push({ name: n.q, shape: [qDim, D] }, { name: n.k, shape: [kvDim, D] }, { name: n.v, shape: [kvDim, D] });
    if (cfg.qkvBias)
      out.push({ name: n.qBias, shape: [qDim] }, { name: n.kBias, shape: [kvDim] }, { name: n.vBias, shape: [kvDim] });
    out.push({ name: n.o, shape: [D, qDim] });
    if (cfg.oBias) out.push({ name: n.oBias, shape: [D] });
    out.push({ name: n.postNorm, shape: [D] });
    out.push({ name: n.gate, shape: [I, D] }, { name: n.up, shape: [I, D] }, { name: n.down, shape: [D, I] });
    if (cfg.mlpBias) out.push({ name: n.gateBias, shape: [I] }, { name: n.upBias, shape: [I] }, { name: n.downBias, shape: [D] });
  }
  out.push({ name: FINAL_NORM, shape: [D] });
  if (!cfg.tieWordEmbeddings) out.push({ name: LM_HEAD, shape: [cfg.vocabSize, D] });
  return out;
}
