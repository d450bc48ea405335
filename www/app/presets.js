// What the page offers: ready templates, a sentence for each strategy, and models.

export const EXAMPLES = [
  { name: "Peter in the garden", text: "Peter [MASK*3] into the garden, and [MASK*4] under the gate." },
  { name: "A story opening", text: "Once upon a time there was a little [MASK*2] who lived in a [MASK*3]." },
  { name: "Fill the middle", text: "The old woman [MASK*8] and then she went home to bed." },
  { name: "Rewrite words", text: "The rabbit [[was very hungry]], so he ran to the farmer's garden." },
  { name: "Dialogue", text: "\"Where are you going?\" asked the [MASK]. \"I am going [MASK*5],\" said Peter." },
  { name: "Many holes", text: "[MASK*6] in the morning, [MASK*6] by the river, [MASK*6]." },
  { name: "A hole that grows (dreamon model)", text: "The little girl [MASK*?] to the park." },
  { name: "Holes of 2 to 6 tokens", text: "Once upon a time [MASK*2-6] lived in a [MASK*1-4]." },
];

/**
 * The page's words for each strategy, by the engine's name for it: the list itself and its
 * order come from the engine (the package's `strategies()`), so a strategy the engine gains
 * shows up with its own help. `value` is what the page sends when it is not the name. The
 * demo's test fails when a name here is not the engine's.
 */
export const STRATEGY_NOTES = {
  default: { help: "The library's default for the loaded model's family: on a masked model most-confident-first (greedy at temperature 0, where it fills best by unmask eval --spans); on a uniform-state one the exact posterior with a greedy last step." },
  ancestral: { label: "ancestral (MDLM)", help: "Each masked position unmasks with the posterior probability (α_s − α_t)/(1 − α_t): a random order, the faithful reverse process." },
  "first-hitting": { label: "first-hitting", help: "Exactly one uniformly chosen position per step, with the time jumped to when it would first unmask." },
  "top-prob": { label: "confidence (LLaDA)", help: "Commit the k most probable predictions each step (LLaDA's low-confidence remasking)." },
  margin: { label: "margin", help: "Commit where the best token leads the second by most." },
  entropy: { label: "entropy", help: "Commit where the predicted distribution is most peaked (lowest entropy)." },
  threshold: { value: "threshold:0.9", label: "threshold 0.9 (Fast-dLLM)", help: "Commit the most confident prediction plus every other above p = 0.9: many tokens per pass when the model is sure." },
  "entropy-bound": { value: "entropy-bound:0.1", label: "entropy bound 0.1 (DiffusionGemma)", help: "Commit the lowest-entropy predictions while their entropies, less the last one's, sum to at most 0.1 nats: as many per pass as the model is jointly sure of." },
  "mask-predict": { label: "Mask-Predict", help: "Predict every hole, then re-mask the least confident and predict again (10 iterations): tokens can change." },
  remdm: { value: "remdm:0.05", label: "ReMDM η 0.05 (masked, revises)", help: "MDLM's ancestral steps, but a committed token is re-masked with probability min(η, (1 − α_s)/α_t), so the fill can revise itself." },
  uniform: { label: "uniform posterior (UDLM/Duo)", help: "Uniform-state models: every hole holds a token from the start; each step keeps it, draws from the model, or draws noise, by the exact posterior; a greedy last step." },
  psi: { value: "psi:0.9", label: "Ψ-sampler κ 0.9 (Duo)", help: "Uniform-state models: 90% posterior, 10% re-noised towards the model's clean guess (a predictor-corrector step)." },
  "sedd-euler": { label: "SEDD Euler", help: "Score-entropy models: an Euler step on the reverse rate, then the final denoiser." },
  "sedd-analytic": { label: "SEDD analytic", help: "Score-entropy models: Tweedie τ-leaping steps, then the final denoiser." },
  ddim: { label: "DDIM", help: "Continuous models: deterministic steps toward the self-conditioned estimate; the text condenses out of noise." },
  ddpm: { label: "DDPM", help: "Continuous models: ancestral steps with fresh noise each step (Plaid's sampler)." },
};

/**
 * Models: the three bundled with the package ship with the page (`bundled`: loaded by name); the
 * others download from the Hugging Face hub (MDLM-OWT's repository has no tokenizer.json, so
 * GPT-2's is read beside it).
 */
export const MODELS = [
  { id: "default", name: "default — 8 M MDLM, children's books (16 MB, offline)", source: "default", bundled: true, help: "Masked (absorbing-state) diffusion, trained by this project on public-domain children's books; context 128 tokens." },
  { id: "uniform", name: "uniform — 8 M UDLM (uniform-state), children's books (16 MB, offline)", source: "uniform", bundled: true, help: "Uniform-state diffusion (UDLM) of the same shape, vocabulary and books: every hole starts as random tokens, and any of them may change at every step until the text condenses out of the noise." },
  { id: "dreamon", name: "dreamon — 8 M MDLM whose holes grow and shrink (DreamOn), children's books (16 MB, offline)", source: "dreamon", bundled: true, help: "The default model taught DreamOn's two length moves: a hole of unknown length ([MASK*?], [MASK*A-B]) starts at 4 tokens and grows (a committed <|expand|> becomes two masks) or shrinks (a committed end token deletes itself and the masks to its right) while it is filled, once, instead of once per length." },
  { id: "mdlm-owt", name: "MDLM-OWT — kuleshov-group/mdlm-owt (170 M, ~680 MB)", source: "kuleshov-group/mdlm-owt", tokenizer: "openai-community/gpt2", help: "The MDLM paper's OpenWebText model (GPT-2 tokens, context 1024). Large: slow on the CPU path." },
  { id: "bert", name: "BERT base uncased — google-bert/bert-base-uncased (110 M, ~440 MB)", source: "google-bert/bert-base-uncased", help: "A masked language model used as a denoiser: it was trained at one noise level (15% masked), yet it can fill iteratively." },
  { id: "distilbert", name: "DistilBERT base uncased — distilbert/distilbert-base-uncased (66 M, ~270 MB)", source: "distilbert/distilbert-base-uncased", help: "BERT's distilled half: faster, a little weaker." },
  { id: "custom", name: "any Hugging Face folder…", source: null, help: "A hub id (owner/name) or the URL of a folder with config.json, model.safetensors and tokenizer.json." },
];
