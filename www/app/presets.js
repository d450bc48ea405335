// What the page offers: ready templates, a sentence for each strategy, and models.

/**
 * General English for the Qwen3 A2D presets: facts with holes. Qwen's tokenizer splits numbers
 * into digits, so "100" is three tokens; the text runs past 32 tokens, so the BD3LM preset
 * decodes it in more than one block.
 */
const QWEN3_EXAMPLE =
  "The Eiffel Tower stands in [MASK], the capital of France. It was built for the World's Fair of [MASK*4] and is about [MASK*3] metres tall. Water boils at [MASK*3] degrees Celsius at sea level.";

export const EXAMPLES = [
  { name: "Peter in the garden", text: "Peter [MASK*3] into the garden, and [MASK*4] under the gate." },
  { name: "A story opening", text: "Once upon a time there was a little [MASK*2] who lived in a [MASK*3]." },
  { name: "Fill the middle", text: "The old woman [MASK*8] and then she went home to bed." },
  { name: "Rewrite words", text: "The rabbit [[was very hungry]], so he ran to the farmer's garden." },
  { name: "Dialogue", text: "\"Where are you going?\" asked the [MASK]. \"I am going [MASK*5],\" said Peter." },
  { name: "Many holes", text: "[MASK*6] in the morning, [MASK*6] by the river, [MASK*6]." },
  { name: "A hole that grows (dreamon model)", text: "The little girl [MASK*?] to the park." },
  { name: "Holes of 2 to 6 tokens", text: "Once upon a time [MASK*2-6] lived in a [MASK*1-4]." },
  { name: "Facts (Qwen3 0.6B)", text: QWEN3_EXAMPLE },
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
 * GPT-2's is read beside it). A preset may name the load's `attention` (Qwen3 A2D: the files do
 * not say which its checkpoint was trained with) and `weights` (how they are held), and a
 * `template` that choosing it puts in the editor.
 *
 * Qwen3 0.6B diffusion (dllm's Tiny-A2D) loads with `weights: "q8"` on both backends. With
 * WebGPU its matrices stream straight into GPU buffers as they download, quantised to q8_0 on
 * the way (the embedding table, which the head shares, stays f16): ~0.81 GB of GPU buffers, and
 * WebAssembly memory holds one tensor at a time (~0.4 GB at most; measured with a random
 * checkpoint of this shape, docs/performance.md). On the CPU path the checkpoint (bf16 as dllm's
 * convert.py writes it: ~1.2 GB; the hub files' dtype is not checked here) streams into the
 * module as f32, 2.4 GB of its 4 GiB, and is quantised to ~0.65 GB after the load; a device
 * without ~3 GB to spare for the tab fails it (an out-of-memory error). The page states what a
 * preset will take on this device (the package's `need()`) before anything downloads; a
 * checkpoint past the module's 4 GiB, or a row past the adapter's binding limit, is refused from
 * its header (ModelTooLarge).
 * The canvas is the text as given: Qwen's post-processor adds no BOS or EOS and dllm's infill
 * uses no chat template.
 */
export const MODELS = [
  { id: "default", name: "default — 8 M MDLM, children's books (16 MB, offline)", source: "default", bundled: true, help: "Masked (absorbing-state) diffusion, trained by this project on public-domain children's books; context 128 tokens." },
  { id: "uniform", name: "uniform — 8 M UDLM (uniform-state), children's books (16 MB, offline)", source: "uniform", bundled: true, help: "Uniform-state diffusion (UDLM) of the same shape, vocabulary and books: every hole starts as random tokens, and any of them may change at every step until the text condenses out of the noise." },
  { id: "dreamon", name: "dreamon — 8 M MDLM whose holes grow and shrink (DreamOn), children's books (16 MB, offline)", source: "dreamon", bundled: true, help: "The default model taught DreamOn's two length moves: a hole of unknown length ([MASK*?], [MASK*A-B]) starts at 4 tokens and grows (a committed <|expand|> becomes two masks) or shrinks (a committed end token deletes itself and the masks to its right) while it is filled, once, instead of once per length." },
  { id: "mdlm-owt", name: "MDLM-OWT — kuleshov-group/mdlm-owt (170 M, ~680 MB)", source: "kuleshov-group/mdlm-owt", tokenizer: "openai-community/gpt2", help: "The MDLM paper's OpenWebText model (GPT-2 tokens, context 1024). Large: slow on the CPU path." },
  { id: "bert", name: "BERT base uncased — google-bert/bert-base-uncased (110 M, ~440 MB)", source: "google-bert/bert-base-uncased", help: "A masked language model used as a denoiser: it was trained at one noise level (15% masked), yet it can fill iteratively." },
  { id: "distilbert", name: "DistilBERT base uncased — distilbert/distilbert-base-uncased (66 M, ~270 MB)", source: "distilbert/distilbert-base-uncased", help: "BERT's distilled half: faster, a little weaker." },
  {
    id: "qwen3-mdlm",
    name: "Qwen3 0.6B diffusion (MDLM) — dllm-hub/Qwen3-0.6B-diffusion-mdlm-v0.1 (0.6 B, ~1.2 GB)",
    source: "dllm-hub/Qwen3-0.6B-diffusion-mdlm-v0.1",
    attention: "full",
    weights: "q8",
    template: QWEN3_EXAMPLE,
    help: "dllm's Tiny-A2D: Qwen3-0.6B turned into a masked diffusion model (bidirectional attention, every hole predicted at once) and fine-tuned on chat data; a general-English model (the page takes canvases up to 16384 tokens). Loaded as q8 (int8 weights). With WebGPU the weights stream straight into GPU buffers (~0.8 GB) and never sit in the page's WebAssembly memory; on the CPU path they pass through f32 (2.4 GB of the page's memory) and take ~0.65 GB once loaded. Large: a slow download, and slow on the CPU path; the line below says what it needs here, and a device that cannot hold it says so.",
  },
  {
    id: "qwen3-bd3lm",
    name: "Qwen3 0.6B diffusion (BD3LM, blocks of 32) — dllm-hub/Qwen3-0.6B-diffusion-bd3lm-v0.1 (0.6 B, ~1.2 GB)",
    source: "dllm-hub/Qwen3-0.6B-diffusion-bd3lm-v0.1",
    attention: "block:32",
    weights: "q8",
    template: QWEN3_EXAMPLE,
    help: "The same Qwen3-0.6B trained for block diffusion: the canvas is cut into blocks of 32 positions from the start, each block sees only itself and the blocks before it, and the blocks are filled left to right, each finished before the next (the canvas marks the blocks and the one being decoded). Loaded as q8 (int8 weights): with WebGPU straight into GPU buffers (~0.8 GB), on the CPU path through f32 (2.4 GB) to ~0.65 GB; the line below says what it needs here, and a device that cannot hold it says so.",
  },
  { id: "custom", name: "any Hugging Face folder…", source: null, help: "A hub id (owner/name) or the URL of a folder with config.json, model.safetensors and tokenizer.json." },
];
