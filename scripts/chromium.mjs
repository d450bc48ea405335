// The one way the browser tests start Chromium: Debian's /usr/bin/chromium (or $CHROMIUM),
// headless, driven by playwright-core from $PLAYWRIGHT_CORE (the scripts install it into
// target/npm-tools; it downloads no browser). The flags keep Chromium off the network, which
// this machine's closed network would refuse at every start. Used by
// bindings/npm/test/browser.test.mjs (scripts/test-npm copies this file beside it) and
// www/test/demo.test.mjs.
import { createRequire } from "node:module";

export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

export const FLAGS = [
  "--no-sandbox",
  "--disable-dev-shm-usage",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
];

/** Starts headless Chromium; `webgpu` adds --enable-unsafe-webgpu (SwiftShader's adapter). */
export async function launchChromium({ webgpu = false } = {}) {
  const require = createRequire(import.meta.url);
  const { chromium } = require(process.env.PLAYWRIGHT_CORE ?? "playwright-core");
  const args = webgpu ? [...FLAGS, "--enable-unsafe-webgpu"] : FLAGS;
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args });
}
